#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs the pinned test tools into .venv
# (moto, kubernetes-validate, helm-python-sdk, cel-python, parliament, pytest), then format, lint, Rust tests and the
# manifest tests. Nothing is skipped: a test whose tool is missing fails and says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "== test tools (.venv)"
./scripts/venv.sh
# The Rust tests find moto_server and kubernetes-validate here.
export SECRETS_INJECTOR_VENV="$root/.venv"

echo "== system test tools (podman and runc run the pods' containers; Debian's static busybox is the app image)"
./scripts/system-tools.sh

echo "== cargo fmt"
cargo fmt --all -- --check

echo "== supply chain (no unsafe code; cargo deny: licences, bans, sources, advisories)"
./scripts/deny.sh

echo "== fuzz/Cargo.lock matches fuzz/Cargo.toml and the crates it fuzzes"
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo build (the binaries the end-to-end tests run)"
cargo build --workspace --bins --locked

echo "== container images the end-to-end tests run (static dev-profile binaries, from scratch)"
# SECRETS_INJECTOR_TEST_TAG (default test) names them apart from another checkout's tests on
# this machine: tests/build.rs reads it too.
./scripts/images.sh --profile dev --tag "${SECRETS_INJECTOR_TEST_TAG:-test}"

echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole Rust suite (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "rust: %d passed, %d failed\n", p, f }' "$log"

echo "== manifest and chart tests (kustomize, Helm chart, Containerfiles)"
"$root/.venv/bin/python" -m pytest -q tests/manifests
