#!/usr/bin/env bash
# Builds workspace binaries as static executables (static-pie with glibc) that run in any Linux
# image, a `FROM scratch` one included, without a shell or a libc, and prints their paths, one a
# line, in the order asked.
#
#   scripts/build-static.sh secrets-env                              # profile `static`, this machine
#   scripts/build-static.sh --profile release injector webhook
#   scripts/build-static.sh --target aarch64-unknown-linux-gnu secrets-env
#
# BIN is a binary name of the workspace (injector, webhook, secrets-env). The explicit --target
# keeps build scripts and proc macros dynamic: only the target's artifacts get +crt-static.
# Cargo's progress goes to stderr; stdout is only the paths. Nothing here may need glibc's name
# services (NSS: DNS through nsswitch, user lookups), which a static glibc cannot load.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage="usage: $0 [--target TRIPLE] [--profile PROFILE] BIN..."
target=
profile=static
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a target triple}; shift 2 ;;
    --target=*) target=${1#--target=}; shift ;;
    --profile) profile=${2:?--profile needs a Cargo profile}; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    -*) echo "$usage" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
if [ ${#bins[@]} -eq 0 ]; then
  echo "$usage" >&2
  exit 2
fi
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
  if [ -z "${!linker_var:-}" ]; then
    if ! command -v "$cross_gcc" >/dev/null; then
      echo "no linker for $target: install Debian's cross compiler (apt-get install gcc-${target%%-*}-linux-gnu, which provides $cross_gcc) or set $linker_var" >&2
      exit 1
    fi
    export "$linker_var=$cross_gcc"
  fi
fi

bin_args=()
for bin in "${bins[@]}"; do bin_args+=(--bin "$bin"); done
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
  cargo build --profile "$profile" --locked --target "$target" "${bin_args[@]}" >&2

# Where cargo put them: CARGO_TARGET_DIR when set (relative to the root, where cargo ran).
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
# Cargo names the directories of its two built-in profiles after their old names.
case "$profile" in
  dev|test) dir=debug ;;
  bench) dir=release ;;
  *) dir=$profile ;;
esac
for bin in "${bins[@]}"; do
  path="$target_dir/$target/$dir/$bin"
  # A dynamic result would fail in images without the same libc: refuse it here.
  if command -v file >/dev/null && ! file -L "$path" | grep -q 'statically linked\|static-pie linked'; then
    echo "$path is not statically linked: $(file -L "$path")" >&2
    exit 1
  fi
  echo "$path"
done
