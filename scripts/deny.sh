#!/usr/bin/env bash
# Supply-chain and safety checks: no `unsafe` in project code, then cargo deny (deny.toml) for
# licences, banned crates, sources and RustSec advisories. Installs cargo-deny when missing.
#
# The RustSec advisory database is a git repository on GitHub. Where it cannot be fetched (a
# machine that reaches only the package registries), advisories are checked against a copy
# already on disk if there is one, else reported as NOT checked, loudly; set
# SECRETS_INJECTOR_REQUIRE_ADVISORIES=1 to make that a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CARGO_DENY_VERSION=0.20.2

echo "== no unsafe code"
# Every crate inherits the workspace lints, which forbid unsafe_code...
manifests=$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json,sys; [print(p["manifest_path"]) for p in json.load(sys.stdin)["packages"]]')
for manifest in $manifests; do
  if ! python3 - "$manifest" <<'PY'
import sys, tomllib
lints = tomllib.load(open(sys.argv[1], "rb")).get("lints", {})
sys.exit(0 if lints.get("workspace") is True else 1)
PY
  then
    echo "$manifest: does not inherit the workspace lints ([lints] workspace = true), which forbid unsafe code" >&2
    exit 1
  fi
done
if ! grep -q '^unsafe_code = "forbid"' Cargo.toml; then
  echo "Cargo.toml: [workspace.lints.rust] must keep unsafe_code = \"forbid\"" >&2
  exit 1
fi
# ...and no source file outside the workspace's lint reach (the fuzz targets) has any either.
if grep -rnw --include='*.rs' 'unsafe' objects webhook injector secrets-env tests fuzz/fuzz_targets; then
  echo "unsafe code found above; the project has none" >&2
  exit 1
fi
echo "ok"

echo "== cargo deny"
if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  echo "installing cargo-deny $CARGO_DENY_VERSION (a few minutes, once per machine)"
  cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION"
fi
cargo deny --locked check licenses bans sources

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if cargo deny --locked check advisories 2>"$log"; then
  cat "$log" >&2
  echo "advisories: ok"
  exit 0
fi
cat "$log" >&2
if ! grep -qiE "failed to (fetch|open|clone)|could not resolve host|unable to (fetch|access)|network" "$log"; then
  echo "advisories: cargo deny found problems (above)" >&2
  exit 1
fi
# The database could not be fetched: use a copy on disk if there is one.
if cargo deny --locked --offline check advisories 2>"$log"; then
  cat "$log" >&2
  echo "advisories: ok, against the advisory database already on disk (it could not be updated)"
  exit 0
fi
cat "$log" >&2
if ! grep -qiE "failed to (fetch|open|load)|no such file|not found|advisory database" "$log"; then
  echo "advisories: cargo deny found problems (above)" >&2
  exit 1
fi
echo "************************************************************************" >&2
echo "advisories NOT checked: the RustSec advisory database (a git repository" >&2
echo "on github.com) cannot be fetched from this machine and no copy is on disk." >&2
echo "Run scripts/deny.sh where GitHub is reachable before a release." >&2
echo "************************************************************************" >&2
if [ "${SECRETS_INJECTOR_REQUIRE_ADVISORIES:-0}" = "1" ]; then
  exit 1
fi
