#!/usr/bin/env bash
# Builds the container images from scratch: static binaries (scripts/build-static.sh) plus the CA
# bundle, nothing else, and nothing pulled or compiled inside the image build. Prints each image's
# name and size.
#
#   scripts/images.sh                                       # release build, this machine's arch
#   scripts/images.sh --profile dev --tag test              # what scripts/test.sh and the tests use
#   scripts/images.sh --target aarch64-unknown-linux-gnu    # where that Rust target and cross gcc exist
#   scripts/images.sh --only injector --tag bench           # one image (scripts/bench.sh podstart)
#
#   ghcr.io/secrets-injector/injector:TAG  /usr/local/bin/injector, /usr/local/bin/secrets-env
#   ghcr.io/secrets-injector/webhook:TAG   /usr/local/bin/webhook
#
# TAG defaults to the workspace version, with -PROFILE when the profile is not release and -ARCH
# when the target is not this machine's (so per-architecture images can be joined into one
# multi-architecture manifest: see docs/images.md, "Architectures").
#
# The engine is podman, else docker when its daemon answers, else podman and runc installed from
# Debian (apt-get, as root). SECRETS_INJECTOR_ENGINE=podman|docker chooses. Quirks of the machines
# this is tested on, passed to podman here and by the tests' pod runner (tests/src/podman.rs):
#   --runtime runc    crun fails there with "cgroups in hybrid mode not supported";
#   --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 (podman run) rlimits cannot be raised;
#   --network host    (podman run) to reach the AWS emulator on the host's loopback.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage="usage: $0 [--target TRIPLE] [--profile PROFILE] [--tag TAG] [--only injector|webhook]"
host=$(rustc -vV | sed -n 's/^host: //p')
target=$host
profile=release
tag=
images=(injector webhook)
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a target triple}; shift 2 ;;
    --target=*) target=${1#--target=}; shift ;;
    --profile) profile=${2:?--profile needs a Cargo profile}; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --tag) tag=${2:?--tag needs a tag}; shift 2 ;;
    --tag=*) tag=${1#--tag=}; shift ;;
    --only) images=("${2:?--only needs injector or webhook}"); shift 2 ;;
    --only=*) images=("${1#--only=}"); shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

# The image platform: OCI names the architectures as Go does.
case "${target%%-*}" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "no image platform known for $target: use x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu" >&2; exit 2 ;;
esac
if [ -z "$tag" ]; then
  tag=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
  [ "$profile" = release ] || tag="$tag-$profile"
  [ "$target" = "$host" ] || tag="$tag-$arch"
fi

ca_bundle=${SECRETS_INJECTOR_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if [ ! -s "$ca_bundle" ]; then
  echo "no CA bundle at $ca_bundle: install Debian's ca-certificates (apt-get install ca-certificates) or set SECRETS_INJECTOR_CA_BUNDLE to a PEM bundle" >&2
  exit 1
fi

engine=${SECRETS_INJECTOR_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then
    engine=podman
  elif command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
    engine=docker
  else
    if [ "$(id -u)" -ne 0 ]; then
      echo "neither podman nor a running docker is available: install podman and runc (apt-get install podman runc) or run this as root" >&2
      exit 1
    fi
    echo "== installing podman and runc (Debian)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
    engine=podman
  fi
fi
case "$engine" in
  podman)
    command -v runc >/dev/null || { echo "podman here needs runc (crun fails with cgroups in hybrid mode): apt-get install runc" >&2; exit 1; }
    build=(timeout --kill-after=10 600 podman --runtime runc build --pull=never) ;;
  docker) build=(timeout --kill-after=10 600 docker build) ;;
  *) echo "SECRETS_INJECTOR_ENGINE must be podman or docker, not $engine" >&2; exit 2 ;;
esac

echo "== static binaries ($target, profile $profile; secrets-env with profile static)" >&2
# Every pod pulls the injector's image, so a release injector is built with the `injector`
# profile (Cargo.toml: the release profile with fat LTO and one codegen unit, for size); the
# webhook keeps the release profile.
injector_profile=$profile
[ "$profile" = release ] && injector_profile=injector
# The release profile keeps symbols (strip = "debuginfo"), for profiling on the host; the images
# do without (a quarter of the injector). Dev images keep them, for backtraces.
strip_tool=
if [ "$profile" != dev ] && [ "$profile" != test ]; then
  strip_tool=strip
  [ "$target" = "$host" ] || strip_tool="${target/-unknown-/-}-strip"
  if ! command -v "$strip_tool" >/dev/null; then
    echo "no $strip_tool to strip the binaries: install binutils (binutils-${target%%-*}-linux-gnu for a cross target)" >&2
    exit 1
  fi
fi

# One build context per image, holding exactly what its Containerfile copies.
context="$root/target/images/$target/$profile"
for image in "${images[@]}"; do
  rm -rf "${context:?}/$image"
  mkdir -p "$context/$image"
  case "$image" in
    injector)
      injector=$(./scripts/build-static.sh --target "$target" --profile "$injector_profile" injector)
      secrets_env=$(./scripts/build-static.sh --target "$target" --profile static secrets-env)
      cp "$injector" "$secrets_env" "$context/injector/" ;;
    webhook)
      webhook=$(./scripts/build-static.sh --target "$target" --profile "$profile" webhook)
      cp "$webhook" "$context/webhook/" ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  [ -z "$strip_tool" ] || "$strip_tool" --strip-all "$context/$image"/*
  cp "$ca_bundle" "$context/$image/ca-certificates.crt"
done

for image in "${images[@]}"; do
  name="ghcr.io/secrets-injector/$image:$tag"
  echo "== $engine build $name" >&2
  previous=$($engine image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)
  "${build[@]}" --platform "linux/$arch" -f "$image/Containerfile" -t "$name" "$context/$image" >&2
  # The image this tag named before is left without a name: remove it, unless something uses it.
  if [ -n "$previous" ] && [ "$previous" != "$($engine image inspect --format '{{.Id}}' "$name")" ]; then
    $engine rmi "$previous" >/dev/null 2>&1 || true
  fi
done
for image in "${images[@]}"; do
  name="ghcr.io/secrets-injector/$image:$tag"
  size=$($engine image inspect --format '{{.Size}}' "$name")
  printf '%s\t%s bytes (%s MB)\n' "$name" "$size" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')"
done
