#!/usr/bin/env bash
# Builds secrets-env as a static executable (static-pie with glibc, or musl where that target is
# installed) that runs in any Linux image, without a shell or a libc, and prints its path.
#
#   scripts/build-secrets-env.sh                       # this machine's architecture
#   scripts/build-secrets-env.sh --target aarch64-unknown-linux-gnu
#
# The explicit --target keeps build scripts and proc macros dynamic: only the target's
# artifacts get +crt-static. Cargo's progress goes to stderr; stdout is only the path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

target=
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a target triple}; shift 2 ;;
    --target=*) target=${1#--target=}; shift ;;
    *) echo "usage: $0 [--target TRIPLE]" >&2; exit 2 ;;
  esac
done
host=$(rustc -vV | sed -n 's/^host: //p')
target=${target:-$host}
if [ "$target" != "$host" ]; then
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    echo "the Rust standard library for $target is not installed: rustup target add $target" >&2
    exit 1
  fi
  # Debian's cross compilers are named without the vendor: aarch64-linux-gnu-gcc.
  linker_var="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER"
  cross_gcc="${target/-unknown-/-}-gcc"
  if [ -z "${!linker_var:-}" ] && command -v "$cross_gcc" >/dev/null; then
    export "$linker_var=$cross_gcc"
  fi
fi

RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
  cargo build --profile static --locked --target "$target" -p secrets-env >&2

bin="$root/target/$target/static/secrets-env"
# A dynamic result would fail in images without the same libc: refuse it here.
if command -v file >/dev/null && ! file -L "$bin" | grep -q 'statically linked\|static-pie linked'; then
  echo "$bin is not statically linked: $(file -L "$bin")" >&2
  exit 1
fi
echo "$bin"
