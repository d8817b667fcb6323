"""certs/make-certs.sh and the provided-certs overlay: the certificate the API server gets is the
one the webhook serves, for the Service's DNS names, signed by the CA in the caBundle."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from support import NAMESPACE, SERVICE, TLS_SECRET, copy_manifests, kubectl, one, openssl, run_make_certs

DNS_NAMES = [
    SERVICE,
    f"{SERVICE}.{NAMESPACE}",
    f"{SERVICE}.{NAMESPACE}.svc",
    f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
]


def openssl_run(*args: str) -> str:
    result = subprocess.run([openssl(), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_openssl_certificates_serve_the_webhook_service(provided_certs):
    _, tls = provided_certs
    assert sorted(p.name for p in tls.iterdir()) == ["ca-bundle.txt", "ca.crt", "secret.yaml", "tls.crt", "tls.key"]
    # The CA's key is never written: nothing else can be signed with this CA.
    assert "PRIVATE KEY" not in (tls / "ca.crt").read_text()
    assert stat.S_IMODE((tls / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    for name in DNS_NAMES:
        openssl_run(
            "verify", "-CAfile", str(tls / "ca.crt"), "-purpose", "sslserver",
            "-verify_hostname", name, str(tls / "tls.crt"),
        )
    text = openssl_run("x509", "-in", str(tls / "tls.crt"), "-noout", "-text")
    assert "CA:FALSE" in text
    assert "TLS Web Server Authentication" in text
    # The key belongs to the certificate.
    cert_key = openssl_run("x509", "-in", str(tls / "tls.crt"), "-noout", "-pubkey")
    key_pub = openssl_run("pkey", "-in", str(tls / "tls.key"), "-pubout")
    assert cert_key == key_pub
    assert (tls / "tls.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_other_names_are_not_covered(provided_certs):
    _, tls = provided_certs
    result = subprocess.run(
        [openssl(), "verify", "-CAfile", str(tls / "ca.crt"), "-verify_hostname", "evil.example.com", str(tls / "tls.crt")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode != 0


def test_secret_and_ca_bundle_files(provided_certs):
    _, tls = provided_certs
    secret = yaml.safe_load((tls / "secret.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"] == {"name": TLS_SECRET, "namespace": NAMESPACE}
    for name in ("ca.crt", "tls.crt", "tls.key"):
        assert base64.b64decode(secret["data"][name]) == (tls / name).read_bytes()
    assert base64.b64decode((tls / "ca-bundle.txt").read_text(), validate=True) == (tls / "ca.crt").read_bytes()


def test_overlay_puts_the_ca_in_both_webhooks_and_the_files_in_the_secret(provided_certs, rendered):
    _, tls = provided_certs
    docs = rendered("overlay-provided-certs")
    secret = one(docs, "Secret")
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"], secret["type"]) == (
        TLS_SECRET, NAMESPACE, "kubernetes.io/tls",
    )
    for name in ("ca.crt", "tls.crt", "tls.key"):
        assert base64.b64decode("".join(secret["data"][name].split())) == (tls / name).read_bytes()
    hooks = one(docs, "MutatingWebhookConfiguration")["webhooks"]
    for hook in hooks:
        bundle = "".join(hook["clientConfig"]["caBundle"].split())
        assert base64.b64decode(bundle, validate=True) == (tls / "ca.crt").read_bytes()


def test_overlay_without_certificates_says_which_file_is_missing(tmp_path):
    manifests = copy_manifests(tmp_path)
    result = subprocess.run(
        [kubectl(), "kustomize", str(manifests / "overlays" / "provided-certs")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode != 0
    assert "tls/tls.crt" in result.stderr


def fake_webhook(directory: Path, log: Path) -> Path:
    """A stand-in for the webhook binary that records its arguments and writes the files
    `webhook certs` writes."""
    script = directory / "webhook"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{log}"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --out-dir ] && out="$2"; shift; done\n'
        'for f in ca.crt tls.crt tls.key; do echo "-----BEGIN $f-----" > "$out/$f"; done\n'
    )
    script.chmod(0o755)
    return script


def test_uses_the_webhook_binary_when_found_on_path(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "args"
    fake_webhook(bin_dir, log)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("WEBHOOK", None)
    result = run_make_certs(out, env=env)
    assert result.returncode == 0, result.stderr
    assert log.read_text().split() == [
        "certs", "--service", SERVICE, "--namespace", NAMESPACE, "--days", "365", "--out-dir", str(out),
    ]
    assert "using" in result.stderr and "webhook certs" in result.stderr


def test_webhook_variable_names_the_binary(tmp_path):
    log = tmp_path / "args"
    binary = fake_webhook(tmp_path, log)
    out = tmp_path / "out"
    result = run_make_certs(
        out, "--service", "si", "--namespace", "platform", "--days", "90", env={**os.environ, "WEBHOOK": str(binary)}
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().split() == [
        "certs", "--service", "si", "--namespace", "platform", "--days", "90", "--out-dir", str(out),
    ]


def test_openssl_flag_bypasses_the_webhook_binary(tmp_path):
    log = tmp_path / "args"
    binary = fake_webhook(tmp_path, log)
    out = tmp_path / "out"
    result = run_make_certs(out, "--openssl", "--days", "30", env={**os.environ, "WEBHOOK": str(binary)})
    assert result.returncode == 0, result.stderr
    assert not log.exists()
    end = openssl_run("x509", "-in", str(out / "tls.crt"), "-noout", "-checkend", str(29 * 86400))
    assert "will not expire" in end
    expired = subprocess.run(
        [openssl(), "x509", "-in", str(out / "tls.crt"), "-noout", "-checkend", str(31 * 86400)],
        capture_output=True, text=True, check=False,
    )
    assert expired.returncode != 0


def test_a_webhook_that_writes_nothing_is_an_error(tmp_path):
    binary = tmp_path / "webhook"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    result = run_make_certs(tmp_path / "out", env={**os.environ, "WEBHOOK": str(binary)})
    assert result.returncode == 1
    assert "ca.crt was not written" in result.stderr


def test_without_webhook_or_openssl_it_says_what_to_install(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mkdir", "chmod"):
        path = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(path)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    result = run_make_certs(tmp_path / "out", env=env)
    assert result.returncode == 1
    assert "neither the webhook binary nor openssl was found" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "soon"], "--days must be a positive number"),
        (["--days", "0"], "--days must be a positive number"),
        (["--service", "Webhook_Service"], "Webhook_Service is not a valid Kubernetes name"),
        (["--namespace", "-x"], "-x is not a valid Kubernetes name"),
        (["--rotate"], "unknown argument: --rotate"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, args, message):
    result = run_make_certs(tmp_path / "out", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_openssl_certificates_for_another_service(tmp_path):
    out = tmp_path / "out"
    result = run_make_certs(out, "--openssl", "--service", "si", "--namespace", "platform")
    assert result.returncode == 0, result.stderr
    openssl_run("verify", "-CAfile", str(out / "ca.crt"), "-verify_hostname", "si.platform.svc", str(out / "tls.crt"))
    assert yaml.safe_load((out / "secret.yaml").read_text())["metadata"]["namespace"] == "platform"


def test_real_webhook_certs_feed_the_overlay(tmp_path):
    # The path users take with the released binary: make-certs.sh runs `webhook certs`.
    from support import webhook_binary

    manifests = copy_manifests(tmp_path)
    tls = manifests / "overlays" / "provided-certs" / "tls"
    result = run_make_certs(tls, env={**os.environ, "WEBHOOK": webhook_binary()})
    assert result.returncode == 0, result.stderr
    assert {"ca.crt", "tls.crt", "tls.key", "secret.yaml", "ca-bundle.txt"} <= {p.name for p in tls.iterdir()}
    for name in DNS_NAMES:
        openssl_run("verify", "-CAfile", str(tls / "ca.crt"), "-purpose", "sslserver", "-verify_hostname", name, str(tls / "tls.crt"))
    from support import kustomize

    docs = kustomize(manifests / "overlays" / "provided-certs")
    for hook in one(docs, "MutatingWebhookConfiguration")["webhooks"]:
        bundle = "".join(hook["clientConfig"]["caBundle"].split())
        assert bundle == (tls / "ca-bundle.txt").read_text().strip()
    secret = yaml.safe_load((tls / "secret.yaml").read_text())
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"], secret["type"]) == (
        TLS_SECRET, NAMESPACE, "kubernetes.io/tls",
    )


def test_overlay_trusts_every_ca_in_ca_crt_during_a_rotation(tmp_path, provided_certs):
    # certs/README.md: ca.crt holding the new and the old CA puts both in the caBundle.
    _, old = provided_certs
    manifests = copy_manifests(tmp_path)
    tls = manifests / "overlays" / "provided-certs" / "tls"
    result = run_make_certs(tls, "--openssl")
    assert result.returncode == 0, result.stderr
    both = (tls / "ca.crt").read_bytes() + (old / "ca.crt").read_bytes()
    (tls / "ca.crt").write_bytes(both)
    from support import kustomize

    for hook in one(kustomize(manifests / "overlays" / "provided-certs"), "MutatingWebhookConfiguration")["webhooks"]:
        assert base64.b64decode("".join(hook["clientConfig"]["caBundle"].split())) == both
