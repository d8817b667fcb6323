#!/usr/bin/env bash
# The benchmark suite, one command: installs what it needs (the test venv, then the pinned AWS CLI
# and uvloop from scripts/requirements-bench.txt, wrk and GNU time from Debian when missing), builds
# the release binaries, and runs scripts/bench/run.py. See BENCHMARKS.md for what it measures.
#
#   ./scripts/bench.sh                      every part (about 4 minutes on 2 cores, after the build)
#   ./scripts/bench.sh injector storm       some parts: injector, webhook, storm, growth
#   ./scripts/bench.sh --quick              fewer runs, shorter loads: a smoke test
#   ./scripts/bench.sh --update-doc         also write the figures into BENCHMARKS.md
#   ./scripts/bench.sh --no-build ...       use target/release as it is
#
# Results: target/bench/results.json and target/bench/report.md. The machine should be otherwise
# idle: the report records the load average and any busy process next to each part.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

build=1
args=()
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    *) args+=("$arg") ;;
  esac
done

echo "== tools (.venv, AWS CLI, wrk)" >&2
./scripts/venv.sh
req="$root/scripts/requirements-bench.txt"
stamp="$root/.venv/.requirements-bench.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$root/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
# wrk loads the webhook; GNU time (/usr/bin/time) reports each client's peak RSS.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run this as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$build" = 1 ]; then
  echo "== cargo build --release (a cold build takes about 10 minutes on 2 cores)" >&2
  cargo build --release --workspace --bins --locked
fi

echo "== benchmarks" >&2
exec "$root/.venv/bin/python" "$root/scripts/bench/run.py" ${args[@]+"${args[@]}"}
