"""The Deployment's command line starts the real webhook binary: its flags are the binary's, and
the probes and the metrics port answer where the manifests point them."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from support import TLS_DIR, one, webhook_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def https_status(port: int, path: str, ca: str, server_name: str) -> int:
    context = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
            status_line = tls.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


@pytest.mark.parametrize(("source", "name"), [("kustomize", "base"), ("helm", "everything-changed")])
def test_deployment_command_line_starts_the_webhook(source, name, rendered, helm_rendered, tmp_path):
    docs = rendered(name) if source == "kustomize" else helm_rendered(name)
    deployment = one(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    namespace = deployment["metadata"]["namespace"]
    service = one(docs, "Service")["metadata"]["name"]
    binary = webhook_binary()
    tls = tmp_path / "tls"
    made = subprocess.run(
        [binary, "certs", "--service", service, "--namespace", namespace, "--out-dir", str(tls)],
        capture_output=True, text=True, check=False,
    )
    assert made.returncode == 0, made.stderr
    https_port, metrics_port = free_port(), free_port()
    # Only the addresses and the mounted Secret's directory change: every other flag is the manifest's.
    local = {
        "--listen": f"127.0.0.1:{https_port}",
        "--metrics-listen": f"127.0.0.1:{metrics_port}",
        "--tls-cert": str(tls / "tls.crt"),
        "--tls-key": str(tls / "tls.key"),
    }
    args = []
    for arg in container["args"]:
        flag, _, value = arg.partition("=")
        if flag in ("--tls-cert", "--tls-key"):
            assert value.startswith(TLS_DIR + "/")
        args.append(f"{flag}={local[flag]}" if flag in local else arg)
    log = (tmp_path / "webhook.log").open("w")
    process = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        server_name = f"{service}.{namespace}.svc"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"webhook exited: {(tmp_path / 'webhook.log').read_text()}"
            try:
                ready = https_status(https_port, "/readyz", str(tls / "ca.crt"), server_name)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "webhook.log").read_text()
                time.sleep(0.2)
        probes = {p: container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
        assert ready == 200
        assert https_status(https_port, probes["livenessProbe"], str(tls / "ca.crt"), server_name) == 200
        assert https_status(https_port, probes["readinessProbe"], str(tls / "ca.crt"), server_name) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            assert response.status == 200
            assert b"# TYPE" in response.read()
    finally:
        process.terminate()
        code = process.wait(timeout=60)
        log.close()
    # SIGTERM is a clean stop (what the kubelet sends).
    assert code == 0, (tmp_path / "webhook.log").read_text()
