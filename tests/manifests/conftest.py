"""Renderings shared by the manifest tests: every kustomization and the Helm chart with several
sets of values, each rendered once per test session."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from support import (
    MANIFESTS,
    Doc,
    copy_manifests,
    helm_render,
    kustomize,
    kustomize_with_components,
    openssl,
    run_make_certs,
)

KUSTOMIZATIONS = [
    "default",
    "base",
    "overlay-cert-manager",
    "overlay-provided-certs",
    "base+object-selector",
    "base+network-policy",
    "base+secret-provider-classes",
    "base+network-policy+secret-provider-classes",
    "cert-manager+object-selector+network-policy",
    "examples",
]

# The cert-manager kinds each kustomization holds (kubernetes-validate has no schema for them).
CERT_MANAGER_KINDS = {
    "overlay-cert-manager": ["Certificate", "Certificate", "Issuer", "Issuer"],
    "cert-manager+object-selector+network-policy": ["Certificate", "Certificate", "Issuer", "Issuer"],
}

# The install kustomizations (examples/ is an app, not the webhook).
INSTALLS = [name for name in KUSTOMIZATIONS if name != "examples"]

HELM_CASES: dict[str, dict] = {
    "defaults": {},
    "cert-manager": {"certificate": {"mode": "certManager"}},
    "cert-manager-own-issuer": {
        "certificate": {
            "mode": "certManager",
            "certManager": {
                "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"},
                "duration": "720h",
                "renewBefore": "240h",
            },
        }
    },
    "object-selector": {"selector": {"mode": "objectSelector"}},
    "secret-provider-classes": {"secretProviderClasses": {"enabled": True}},
    "csi-rewrite-network-policy": {
        "secretProviderClasses": {"enabled": False, "csiVolumes": "rewrite"},
        "networkPolicy": {"enabled": True, "apiServerCIDR": "10.20.0.0/16"},
    },
    "everything-changed": {
        "image": {
            "repository": "registry.example.com/platform/webhook",
            "tag": "sha256:" + "a" * 64,
            "pullPolicy": "Always",
        },
        "injector": {
            "image": {"repository": "registry.example.com/platform/injector", "tag": "1.2.3"},
            "resources": {
                "requests": {"cpu": "20m", "memory": "32Mi"},
                "limits": {"cpu": "200m", "memory": "64Mi"},
            },
            "user": "1000",
            "volumeSizeLimit": "4Mi",
            "refresh": {
                "minInterval": "1m",
                "resources": {
                    "requests": {"cpu": "5m", "memory": "12Mi"},
                    "limits": {"cpu": "50m", "memory": "24Mi"},
                },
            },
        },
        "replicas": 3,
        "resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
        "timeoutSeconds": 5,
        "selector": {"mode": "objectSelector"},
        "excludedNamespaces": ["monitoring", "platform"],
        "metrics": {"port": 9100},
        "priorityClassName": "",
        "defaultRegion": "eu-west-1",
        "logFormat": "text",
        "certificate": {
            "mode": "existingSecret",
            "existingSecret": {
                "name": "webhook-serving",
                "caBundle": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode(),
            },
        },
        "networkPolicy": {
            "enabled": True,
            "apiServerCIDR": "10.20.0.0/16",
            "metricsNamespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        },
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
    },
}

# The renderings that read SecretProviderClasses: read-only RBAC on them, and a token.
READS_CLASSES = {
    ("kustomize", "base+secret-provider-classes"),
    ("kustomize", "base+network-policy+secret-provider-classes"),
    ("helm", "secret-provider-classes"),
    ("helm", "csi-rewrite-network-policy"),
}

# Release name and namespace of each case (the defaults match the kustomize base).
HELM_RELEASES = {"everything-changed": ("platform-si", "platform")}


@pytest.fixture(scope="session")
def provided_certs(tmp_path_factory) -> tuple[Path, Path]:
    """A copy of manifests/ whose provided-certs overlay holds certificates made by
    certs/make-certs.sh (openssl path): (manifests copy, tls directory)."""
    openssl()
    manifests = copy_manifests(tmp_path_factory.mktemp("provided-certs"))
    tls = manifests / "overlays" / "provided-certs" / "tls"
    result = run_make_certs(tls, "--openssl")
    assert result.returncode == 0, f"certs/make-certs.sh failed:\n{result.stderr}"
    return manifests, tls


@pytest.fixture(scope="session")
def rendered(request):
    """name -> rendered documents of that kustomization, rendered on first use (the
    provided-certs overlay makes its certificates then, so only it needs openssl)."""
    cache: dict[str, list[Doc]] = {}
    makers = {
        "default": lambda: kustomize(MANIFESTS),
        "base": lambda: kustomize(MANIFESTS / "base"),
        "overlay-cert-manager": lambda: kustomize(MANIFESTS / "overlays" / "cert-manager"),
        "overlay-provided-certs": lambda: kustomize(
            request.getfixturevalue("provided_certs")[0] / "overlays" / "provided-certs"
        ),
        "base+object-selector": lambda: kustomize_with_components("object-selector"),
        "base+network-policy": lambda: kustomize_with_components("network-policy"),
        "base+secret-provider-classes": lambda: kustomize_with_components("secret-provider-classes"),
        "base+network-policy+secret-provider-classes": lambda: kustomize_with_components(
            "network-policy", "secret-provider-classes"
        ),
        "cert-manager+object-selector+network-policy": lambda: kustomize_with_components(
            "object-selector", "network-policy", base=MANIFESTS / "overlays" / "cert-manager"
        ),
        "examples": lambda: kustomize(MANIFESTS / "examples"),
    }

    def get(name: str) -> list[Doc]:
        if name not in cache:
            cache[name] = makers[name]()
        return cache[name]

    return get


@pytest.fixture(scope="session")
def helm_rendered():
    """case name -> documents the chart renders with that case's values, rendered on first use."""
    cache: dict[str, list[Doc]] = {}

    def get(name: str) -> list[Doc]:
        if name not in cache:
            release, namespace = HELM_RELEASES.get(name, ("secrets-injector", "secrets-injector"))
            cache[name] = helm_render(HELM_CASES[name], name=release, namespace=namespace)
        return cache[name]

    return get
