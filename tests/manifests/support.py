"""Shared helpers of the manifest tests: the tools (kubectl, kubernetes-validate, helm-python-sdk),
rendering kustomizations and the Helm chart, and validating the result.

A missing tool fails the test that needs it, with the command that installs it: never a skip."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
CHART = MANIFESTS / "helm" / "secrets-injector"

# The Kubernetes versions the manifests support (kubernetes-validate's schemas).
KUBERNETES_VERSIONS = ["1.29", "1.30", "1.31", "1.32", "1.33"]

# Kinds kubernetes-validate has no schema for; only these are left out of validation.
CERT_MANAGER_API = "cert-manager.io/v1"
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}

NAMESPACE = "secrets-injector"
RELEASE = "secrets-injector"
SERVICE = "secrets-injector"
TLS_SECRET = "secrets-injector-tls"
TLS_DIR = "/etc/secrets-injector/tls"
WEBHOOK_IMAGE = "ghcr.io/secrets-injector/webhook"
INJECTOR_IMAGE = "ghcr.io/secrets-injector/injector"
# The contract between the webhook and the injector image (command[0] of the init container).
INJECTOR_PATH = "/usr/local/bin/injector"

Doc = dict[str, Any]


def venv_dir() -> Path:
    return Path(os.environ.get("SECRETS_INJECTOR_VENV", REPO / ".venv"))


@functools.cache
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not on PATH: the manifest tests render kustomizations with "
            "`kubectl kustomize`; install kubectl (https://kubernetes.io/docs/tasks/tools/)"
        )
    return path


@functools.cache
def kubernetes_validate() -> str:
    path = venv_dir() / "bin" / "kubernetes-validate"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run ./scripts/venv.sh to install the test tools")
    return str(path)


@functools.cache
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl is not on PATH: the certificate tests need it (apt-get install openssl)")
    return path


@functools.cache
def webhook_binary() -> str:
    path = REPO / "target" / "debug" / "webhook"
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `cargo build -p secrets-injector-webhook` (scripts/test.sh does)")
    return str(path)


def helm_chart():
    try:
        from helm_python.chart import Chart
    except ImportError as error:
        pytest.fail(f"helm-python-sdk is not importable ({error}): run ./scripts/venv.sh")
    return Chart.load(str(CHART))


def load_docs(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize(directory: Path) -> list[Doc]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return load_docs(result.stdout)


def kustomize_with_components(*components: str, base: Path = MANIFESTS / "base") -> list[Doc]:
    """Renders base plus components, from a kustomization the way a user's overlay writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        # Kustomize takes relative paths only.
        def rel(path: Path) -> str:
            return os.path.relpath(path, tmp)

        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [rel(base)],
            "components": [rel(MANIFESTS / "components" / name) for name in components],
        }
        Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return kustomize(Path(tmp))


def helm_render(values: dict[str, Any] | None = None, name: str = RELEASE, namespace: str = NAMESPACE) -> list[Doc]:
    rendered = helm_chart().render(values=values or {}, name=name, namespace=namespace)
    docs: list[Doc] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(load_docs(text))
    return docs


def helm_notes(values: dict[str, Any] | None = None, name: str = RELEASE, namespace: str = NAMESPACE) -> str:
    rendered = helm_chart().render(values=values or {}, name=name, namespace=namespace)
    return next(text for path, text in rendered.items() if path.endswith("templates/NOTES.txt"))


def validate(docs: list[Doc], version: str, tmp_path: Path) -> list[str]:
    """Validates docs with kubernetes-validate --strict; returns the cert-manager kinds left out.

    kubernetes-validate only warns about a kind it has no schema for: any warning fails here, so
    nothing passes unvalidated but the cert-manager kinds named in CERT_MANAGER_KINDS."""
    skipped = [d["kind"] for d in docs if d.get("apiVersion") == CERT_MANAGER_API]
    unexpected = set(skipped) - CERT_MANAGER_KINDS
    assert not unexpected, f"cert-manager kinds without a check: {sorted(unexpected)}"
    checked = [d for d in docs if d.get("apiVersion") != CERT_MANAGER_API]
    assert checked, "nothing to validate"
    target = tmp_path / f"manifests-{version}.yaml"
    target.write_text(yaml.safe_dump_all(checked, sort_keys=False))
    result = subprocess.run(
        [kubernetes_validate(), "--strict", "--quiet", "--kubernetes-version", version, str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, (
        f"kubernetes-validate --strict for Kubernetes {version} failed:\n{output}"
    )
    return skipped


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str) -> Doc:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def key(doc: Doc) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return (doc["kind"], meta.get("namespace", ""), meta["name"])


def normalised(docs: list[Doc]) -> dict[tuple[str, str, str], Doc]:
    """kind/namespace/name -> the resource without its metadata.labels (helm adds its own)."""
    out = {}
    for doc in docs:
        copy = yaml.safe_load(yaml.safe_dump(doc))
        copy["metadata"].pop("labels", None)
        out[key(doc)] = copy
    return out


def match_expression(expression: Doc, labels: dict[str, str]) -> bool:
    value = labels.get(expression["key"])
    operator = expression["operator"]
    if operator == "In":
        return value is not None and value in expression["values"]
    if operator == "NotIn":
        return value is None or value not in expression["values"]
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    raise AssertionError(f"unknown operator {operator}")


def selector_matches(selector: Doc | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (an absent selector matches everything)."""
    if not selector:
        return True
    match_labels = selector.get("matchLabels", {})
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    return all(match_expression(e, labels) for e in selector.get("matchExpressions", []))


def namespace_labels(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A namespace's labels as the API server sets them (kubernetes.io/metadata.name is automatic)."""
    return {"kubernetes.io/metadata.name": name, **(extra or {})}


def sends(webhook: Doc, namespace: dict[str, str], obj: dict[str, str]) -> bool:
    """Whether the API server sends an object with these labels in that namespace to the webhook."""
    return selector_matches(webhook.get("namespaceSelector"), namespace) and selector_matches(
        webhook.get("objectSelector"), obj
    )


def pod_specs(doc: Doc) -> list[Doc]:
    kind = doc["kind"]
    if kind == "Pod":
        return [doc["spec"]]
    if kind == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return [doc["spec"]["template"]["spec"]]
    return []


def run_make_certs(out_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / "certs" / "make-certs.sh"), "--out-dir", str(out_dir), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def copy_manifests(destination: Path) -> Path:
    """A copy of manifests/ (the provided-certs overlay reads key files from inside itself)."""
    target = destination / "manifests"
    shutil.copytree(MANIFESTS, target, ignore=shutil.ignore_patterns("tls"))
    return target
