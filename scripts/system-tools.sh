#!/usr/bin/env bash
# Installs, from Debian and only when missing, the system tools the tests and the demo run:
# podman and runc (the container runtime the pods' containers run on; crun fails on these
# machines), busybox-static (the app image's only program), and iproute2 and iptables (the
# service-mesh test makes network namespaces, a veth pair and a mesh's redirect with them).
set -euo pipefail
missing=()
for package in busybox-static podman runc iproute2 iptables; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run this as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
