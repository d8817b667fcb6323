#!/usr/bin/env bash
# The benchmark suite, one command: installs what it needs (the test venv, then the pinned AWS CLI
# and uvloop from scripts/requirements-bench.txt, wrk and GNU time from Debian when missing), builds
# the release binaries and the injector as its image ships it, and runs scripts/bench/run.py. See
# BENCHMARKS.md for what it measures.
#
#   ./scripts/bench.sh                      every part (about 6 minutes on 2 cores, after the build)
#   ./scripts/bench.sh injector storm       some parts: injector, webhook, storm, growth, refresh, podstart
#                                           (podstart: podman, as root; the injector image is built)
#   ./scripts/bench.sh --quick              fewer runs, shorter loads, no static build: a smoke test
#   ./scripts/bench.sh --update-doc         also write the figures into BENCHMARKS.md
#   ./scripts/bench.sh --no-build ...       use the binaries as they are
#   ./scripts/bench.sh injector --reps 40   more repetitions of the pairs (15 by default)
#   ./scripts/bench.sh injector --ab REF    also pair the injector of REF with this tree's, run by run:
#                                           REF is a commit (built in a temporary git worktree) or
#                                           the path of an injector binary; --ab may be repeated
#
# The injector part times the injector the image ships (static, profile `injector`: Cargo.toml,
# scripts/images.sh) and the release build in turn, one run of each after the other (and of REF's
# with --ab), so that the machine's drift falls on all of them alike; wall and CPU time of every run.
#
# Binaries are taken from CARGO_TARGET_DIR (else target/). SECRETS_INJECTOR_VENV names a venv to
# use instead of .venv (it must hold the packages of scripts/requirements-test.txt).
# Results: target/bench/results.json and target/bench/report.md. The machine should be otherwise
# idle: the report records the load average and any busy process next to each part.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

build=1
quick=0
abs=()
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0; shift ;;
    --ab) abs+=("${2:?--ab needs a commit or the path of an injector binary}"); shift 2 ;;
    --ab=*) abs+=("${1#--ab=}"); shift ;;
    --quick) quick=1; args+=("$1"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac

echo "== tools (venv, AWS CLI, wrk)" >&2
if [ -n "${SECRETS_INJECTOR_VENV:-}" ]; then
  venv=$SECRETS_INJECTOR_VENV
  [ -x "$venv/bin/moto_server" ] || { echo "SECRETS_INJECTOR_VENV=$venv holds no moto_server: install scripts/requirements-test.txt into it" >&2; exit 1; }
else
  ./scripts/venv.sh
  venv="$root/.venv"
fi
export SECRETS_INJECTOR_VENV=$venv
req="$root/scripts/requirements-bench.txt"
stamp="$venv/.requirements-bench.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
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

host=$(rustc -vV | sed -n 's/^host: //p')
shipped="$target_dir/$host/injector/injector"
if [ "$build" = 1 ]; then
  echo "== cargo build --release (a cold build takes about 10 minutes on 2 cores)" >&2
  cargo build --release --workspace --bins --locked
  # The quick smoke test times the release build alone: the image's build (fat LTO) takes as long
  # again, and one left from an earlier build may be stale.
  if [ "$quick" = 0 ]; then
    echo "== the injector as the image ships it: static, profile injector (about 10 minutes cold)" >&2
    shipped=$(./scripts/build-static.sh --profile injector injector)
  else
    shipped=
  fi
fi

# --ab: REF's injector, built once per commit and kept under $target_dir/bench-ab.
ab_args=()
for ab in ${abs[@]+"${abs[@]}"}; do
  if [ -f "$ab" ]; then
    ab_bin=$(cd "$(dirname "$ab")" && pwd)/$(basename "$ab")
    ab_label=$ab
  else
    commit=$(git rev-parse --verify --quiet "$ab^{commit}") || { echo "--ab $ab is neither a file nor a commit" >&2; exit 2; }
    short=$(git rev-parse --short "$commit")
    ab_bin="$target_dir/bench-ab/bin/$short/injector"
    ab_label=$short
    if [ ! -x "$ab_bin" ]; then
      tree="$target_dir/bench-ab/src-$short"
      rm -rf "$tree"
      git worktree add --quiet --detach "$tree" "$commit"
      # The build REF's own tree would ship: static with its `injector` profile when it has one
      # (and the script that builds it), else its release build.
      (
        cd "$tree"
        export CARGO_TARGET_DIR="$target_dir/bench-ab/target"
        if grep -q '^\[profile\.injector\]' Cargo.toml && [ -x scripts/build-static.sh ]; then
          echo "== $short: static, profile injector" >&2
          built=$(./scripts/build-static.sh --profile injector injector)
        else
          echo "== $short: release profile (it has no injector profile)" >&2
          cargo build --release --locked -p secrets-injector --bin injector >&2
          built="$CARGO_TARGET_DIR/release/injector"
        fi
        mkdir -p "$(dirname "$ab_bin")"
        cp "$built" "$ab_bin"
      ) || { git worktree remove --force "$tree" || rm -rf "$tree"; exit 1; }
      git worktree remove --force "$tree" || rm -rf "$tree"
    fi
  fi
  ab_args+=(--ab "$ab_bin" --ab-label "$ab_label")
done

shipped_args=()
if [ -n "$shipped" ] && [ -x "$shipped" ]; then shipped_args=(--shipped "$shipped"); fi

# podstart runs the injector image: the release one (as shipped), or with --quick the dev one.
parts=()
skip=0
for arg in ${args[@]+"${args[@]}"}; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$arg" in --out|--bin-dir|--reps) skip=1 ;; -*) ;; *) parts+=("$arg") ;; esac
done
if [ ${#parts[@]} -eq 0 ] || printf '%s\n' "${parts[@]}" | grep -qx podstart; then
  if [ "$quick" = 1 ]; then image_args=(--profile dev --tag bench-dev); else image_args=(--tag bench); fi
  image="ghcr.io/secrets-injector/injector:${image_args[-1]}"
  if [ "$build" = 1 ]; then
    echo "== the injector image (scripts/images.sh --only injector ${image_args[*]})" >&2
    ./scripts/images.sh --only injector "${image_args[@]}" >&2
  elif ! podman image exists "$image" && podman image exists ghcr.io/secrets-injector/injector:bench; then
    image=ghcr.io/secrets-injector/injector:bench
  fi
  shipped_args+=(--injector-image "$image")
fi
echo "== benchmarks" >&2
exec "$venv/bin/python" "$root/scripts/bench/run.py" --bin-dir "$target_dir/release" \
  ${shipped_args[@]+"${shipped_args[@]}"} ${ab_args[@]+"${ab_args[@]}"} ${args[@]+"${args[@]}"}
