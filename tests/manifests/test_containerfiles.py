"""The Containerfiles put the binaries Cargo.toml declares where the manifests and the webhook
expect them, in an image from scratch with the CA bundle and nothing else. (The images themselves
are built and inspected by tests/tests/it/images.rs; here the files are checked as text.)"""

from __future__ import annotations

import json
import re
import shlex
import tomllib

import pytest

from support import INJECTOR_IMAGE, INJECTOR_PATH, REPO, WEBHOOK_IMAGE

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SECRETS_ENV_PATH = "/usr/local/bin/secrets-env"

IMAGES = {
    # crate directory: (installed path, image name, other binaries the image carries)
    "webhook": ("/usr/local/bin/webhook", WEBHOOK_IMAGE, []),
    "injector": (INJECTOR_PATH, INJECTOR_IMAGE, [("secrets-env", SECRETS_ENV_PATH)]),
}


def instructions(crate: str) -> list[tuple[str, str]]:
    text = (REPO / crate / "Containerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def binary(crate: str) -> str:
    manifest = tomllib.loads((REPO / crate / "Cargo.toml").read_text())
    [name] = [b["name"] for b in manifest.get("bin", [])] or [manifest["package"]["name"]]
    return name


def installed(steps: list[tuple[str, str]]) -> dict[str, str]:
    """Destination path of every file the COPY steps take from the build context."""
    out = {}
    for word, rest in steps:
        if word == "COPY":
            *sources, destination = shlex.split(rest)
            assert not any(s.startswith("--") for s in sources), f"COPY {rest}: from the context only"
            for source in sources:
                assert "/" not in source, f"{source}: the context holds plain files"
                out[source] = destination + source if destination.endswith("/") else destination
    return out


@pytest.mark.parametrize("crate", IMAGES)
def test_containerfile_is_scratch_with_the_binaries_and_the_ca_bundle_only(crate):
    destination, _, others = IMAGES[crate]
    steps = instructions(crate)
    assert [rest for word, rest in steps if word == "FROM"] == ["scratch"]
    # Nothing is run, fetched or compiled while the image builds.
    assert not [word for word, _ in steps if word in {"RUN", "ADD", "ONBUILD"}], steps
    want = {binary(crate): destination, "ca-certificates.crt": CA_BUNDLE}
    want.update({binary(other): path for other, path in others})
    assert installed(steps) == want
    assert destination.rsplit("/", 1)[1] == binary(crate)
    assert ("USER", "65532:65532") in steps
    assert [json.loads(rest) for word, rest in steps if word == "ENTRYPOINT"] == [[destination]]


def test_webhook_image_starts_serve_by_default():
    steps = instructions("webhook")
    assert ("CMD", '["serve"]') in steps


def test_injector_path_is_the_webhooks_command():
    # command[0] of the init container, per the webhook/injector contract.
    assert INJECTOR_PATH == "/usr/local/bin/injector"
    assert IMAGES["injector"][0] == INJECTOR_PATH
    found = []
    for source in (REPO / "webhook" / "src").rglob("*.rs"):
        for value in re.findall(r'INJECTOR_PATH\s*:\s*&str\s*=\s*"([^"]*)"', source.read_text()):
            found.append(value)
            assert value == INJECTOR_PATH, f"{source}: INJECTOR_PATH is {value}"
    assert found, "webhook/src defines INJECTOR_PATH"


@pytest.mark.parametrize("crate", IMAGES)
def test_the_containerfile_and_images_sh_agree_on_the_image_name(crate):
    version = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    _, image, _ = IMAGES[crate]
    text = (REPO / crate / "Containerfile").read_text()
    assert f"podman build -f {crate}/Containerfile -t {image}:{version} CONTEXT" in text
    script = (REPO / "scripts" / "images.sh").read_text()
    assert '-f "$image/Containerfile"' in script
    assert "ghcr.io/secrets-injector/$image:$tag" in script
    assert f"{image}:" == f"ghcr.io/secrets-injector/{crate}:"


def test_the_webhooks_release_build_unwinds_panics():
    """The webhook ships with the release profile: a review that panics must end as an HTTP 500
    for that review (the review pool catches it), not abort the process serving every pod."""
    profiles = tomllib.loads((REPO / "Cargo.toml").read_text())["profile"]
    assert profiles["release"].get("panic", "unwind") == "unwind"
    # The images built for size abort: a panic there ends the run as any failure does.
    assert profiles["injector"]["panic"] == "abort"
    assert profiles["static"]["panic"] == "abort"
