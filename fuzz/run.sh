#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), one after the other, with cargo fuzz
# (libFuzzer). New coverage goes into fuzz/corpus/<target>; a crash stops nothing (fork mode) and
# lands in fuzz/artifacts/<target>: copy it into fuzz/regressions/<target> once fixed, where
# `cargo test` replays it forever. Needs cargo-fuzz (`cargo install --locked cargo-fuzz`) and a
# nightly toolchain, or stable with RUSTC_BOOTSTRAP=1.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(objects_parse admission_review pod_annotations)
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
# 64 KiB for the list and the review: room for an objects annotation at its size limit and for
# inputs nested deep enough to reach every parser's limit (JMESPath, YAML, JSON).
declare -A max_len=([objects_parse]=65536 [admission_review]=65536 [pod_annotations]=4096)
for target in "${targets[@]}"; do
  echo "== $target for ${seconds}s"
  # -s none: the project has no unsafe code for a sanitizer to watch, and throughput matters;
  # -a: debug assertions and overflow checks, so arithmetic slips panic.
  cargo "${toolchain[@]}" fuzz run -s none -a --fuzz-dir fuzz "$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$target]:-8192}" \
    -print_final_stats=1 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
done
