"""The Dockerfiles build the binaries Cargo.toml declares and put them where the manifests and the
webhook expect them. (No Docker engine runs here: the files are checked as text.)"""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest

from support import INJECTOR_IMAGE, INJECTOR_PATH, REPO, WEBHOOK_IMAGE

BUILDER = "rust:1.95-bookworm"
RUNTIME = "gcr.io/distroless/cc-debian12:nonroot"

IMAGES = {
    # crate directory: (installed path, image name)
    "webhook": ("/usr/local/bin/webhook", WEBHOOK_IMAGE),
    "injector": (INJECTOR_PATH, INJECTOR_IMAGE),
}


def instructions(crate: str) -> list[tuple[str, str]]:
    text = (REPO / crate / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def cargo(crate: str) -> tuple[str, list[str]]:
    manifest = tomllib.loads((REPO / crate / "Cargo.toml").read_text())
    return manifest["package"]["name"], [b["name"] for b in manifest.get("bin", [])]


@pytest.mark.parametrize("crate", IMAGES)
def test_dockerfile_builds_and_installs_the_crates_binary(crate):
    package, bins = cargo(crate)
    [binary] = bins
    destination, _ = IMAGES[crate]
    steps = instructions(crate)
    froms = [rest for word, rest in steps if word == "FROM"]
    assert froms == [f"{BUILDER} AS build", RUNTIME], froms
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert f"cargo build --release --locked -p {package}" in " ".join(runs.split()), runs
    copies = [shlex.split(rest) for word, rest in steps if word == "COPY" and "--from=build" in rest]
    assert copies == [["--from=build", f"/src/target/release/{binary}", destination]], copies
    assert destination.rsplit("/", 1)[1] == binary
    # Only the binary goes into the final image (distroless holds libc and CA certificates).
    final = steps[[w for w, _ in steps].index("FROM", 1) :]
    assert [w for w, _ in final if w in {"COPY", "ADD", "RUN"}] == ["COPY"]
    assert ("USER", "65532:65532") in final
    entrypoint = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entrypoint == [f'["{destination}"]']


def test_webhook_image_starts_serve_by_default():
    steps = instructions("webhook")
    assert ("CMD", '["serve"]') in steps


def test_injector_path_is_the_webhooks_command():
    # command[0] of the init container, per the webhook/injector contract.
    assert INJECTOR_PATH == "/usr/local/bin/injector"
    assert IMAGES["injector"][0] == INJECTOR_PATH
    # When the webhook defines the constant, it must agree.
    for source in (REPO / "webhook" / "src").rglob("*.rs"):
        for value in re.findall(r'INJECTOR_PATH\s*:\s*&str\s*=\s*"([^"]*)"', source.read_text()):
            assert value == INJECTOR_PATH, f"{source}: INJECTOR_PATH is {value}"


@pytest.mark.parametrize("crate", IMAGES)
def test_build_command_in_the_dockerfile_tags_the_release_image(crate):
    version = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    _, image = IMAGES[crate]
    text = (REPO / crate / "Dockerfile").read_text()
    assert f"docker build -f {crate}/Dockerfile -t {image}:{version} ." in text


def test_dockerignore_keeps_the_workspace_and_drops_the_rest():
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for dropped in ("target", ".venv", ".git"):
        assert dropped in patterns
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    for kept in ["Cargo.toml", "Cargo.lock", *workspace]:
        assert kept not in patterns and f"/{kept}" not in patterns, kept
        assert (REPO / kept).exists(), kept
