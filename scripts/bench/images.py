"""Container images: sizes of the release images (uncompressed, and compressed as a registry
would hold them: `podman save IMAGE | gzip -c | wc -c`), and what the runtime adds to the
injector's start: start-to-exit of the seeds' example against moto, run by podman from the image
(as the pod's init container: non-root, read-only root, no capabilities, the volume and token
mounted) and the same static binary run bare. hyperfine times both.

    scripts/images.sh && .venv/bin/python scripts/bench/images.py [--runs N]

Results: target/bench/images.md."""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import benchlib as bl

TAG = json.loads(subprocess.run(
    ["cargo", "metadata", "--no-deps", "--format-version", "1", "--locked"],
    cwd=bl.ROOT, check=True, capture_output=True, text=True).stdout)["packages"][0]["version"]
IMAGES = [f"ghcr.io/secrets-injector/{name}:{TAG}" for name in ("injector", "webhook")]
OBJECTS = """- objectName: "/test/parameter"
  objectType: "ssmparameter"
- objectName: "test/secret"
  objectType: "secretsmanager"
  jmesPath:
    - path: "username"
      objectAlias: "SECRET_USERNAME"
    - path: "password"
      objectAlias: "SECRET_PASSWORD"
"""
PODMAN = ["timeout", "600", "podman", "--runtime", "runc"]


def sizes() -> list[tuple[str, int, int]]:
    out = []
    for image in IMAGES:
        size = int(subprocess.run(PODMAN + ["image", "inspect", "--format", "{{.Size}}", image],
                                  check=True, capture_output=True, text=True).stdout)
        gz = subprocess.run(f"{' '.join(PODMAN)} save {image} | gzip -c | wc -c", shell=True,
                            check=True, capture_output=True, text=True).stdout
        out.append((image, size, int(gz)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="images-bench."))
    procs = bl.Processes(work)
    try:
        port = bl.start_moto(procs)
        endpoint = f"http://127.0.0.1:{port}"
        import boto3  # noqa: PLC0415 (only the seeding needs it)
        session = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed",
                                        region_name=bl.REGION)
        session.client("ssm", endpoint_url=endpoint).put_parameter(
            Name="/test/parameter", Value="gonitest", Type="SecureString")
        session.client("secretsmanager", endpoint_url=endpoint).create_secret(
            Name="test/secret", SecretString='{"username":"example","password":"example1234"}')
        volume, token = work / "volume", work / "token"
        volume.mkdir(mode=0o777)
        volume.chmod(0o777)
        token.write_text("bench-token")
        env = {"AWS_ROLE_ARN": bl.ROLE_ARN, "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
               "AWS_REGION": bl.REGION, "AWS_ENDPOINT_URL": endpoint}
        injector_args = ["--mount-path", "/mnt/secrets-store", "--region", bl.REGION, "--objects", OBJECTS]
        container = PODMAN[2:] + [
            "run", "--rm", "--pull=never", "--network", "host",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            "--user", "65532:65532", "--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "-v", f"{volume}:/mnt/secrets-store", "-v", f"{token}:/var/run/token:ro",
            *[f"--env={k}={v}" for k, v in env.items()], IMAGES[0], *injector_args]
        binary = bl.ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "injector"
        bare_env = dict(env, AWS_WEB_IDENTITY_TOKEN_FILE=str(token))
        bare = ["env", "-i", *[f"{k}={v}" for k, v in bare_env.items()], str(binary),
                *[a if a != "/mnt/secrets-store" else str(volume) for a in injector_args]]
        scripts = {}
        for name, argv in (("container", container), ("bare", bare)):
            path = work / f"{name}.sh"
            path.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in argv) + "\n")
            path.chmod(0o755)
            scripts[name] = path
        export = work / "hyperfine.json"
        subprocess.run(["hyperfine", "-N", "--style", "basic", "--warmup", "3", "--runs", str(args.runs),
                        "--export-json", str(export), "-n", "podman run (image)", str(scripts["container"]),
                        "-n", "bare binary", str(scripts["bare"])], check=True)
        results = {r["command"]: r for r in json.loads(export.read_text())["results"]}
        files = sorted(p.name for p in volume.iterdir() if not p.name.startswith(".."))
        assert files == ["SECRET_PASSWORD", "SECRET_USERNAME", "_test_parameter", "test_secret"], files
    finally:
        procs.stop_all()
    lines = ["| image | uncompressed | compressed (gzip of `podman save`) |", "| --- | --- | --- |"]
    for image, size, gz in sizes():
        lines.append(f"| `{image}` | {size / 1e6:.1f} MB ({size} B) | {gz / 1e6:.1f} MB ({gz} B) |")
    lines += ["", "| injector, seeds' example against moto | median | mean ± σ | min | max |",
              "| --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['median'] * 1000:.0f} ms | {r['mean'] * 1000:.0f} ± {r['stddev'] * 1000:.0f} ms"
                     f" | {r['min'] * 1000:.0f} ms | {r['max'] * 1000:.0f} ms |")
    added = results["podman run (image)"]["median"] - results["bare binary"]["median"]
    lines += ["", f"podman adds {added * 1000:.0f} ms (median) to the injector's start-to-exit."]
    report = "\n".join(lines) + "\n"
    out = bl.ROOT / "target" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "images.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
