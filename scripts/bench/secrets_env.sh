#!/usr/bin/env bash
# What secrets-env adds to a container's start: a trivial static program (Debian's static
# busybox, `busybox true`) run bare and through the static secrets-env reading 50 variables from
# a volume laid out as the injector writes it (on tmpfs, like the pod's memory-backed emptyDir).
# hyperfine runs each without a shell (-N). Installs hyperfine and busybox-static when missing,
# builds with scripts/build-secrets-env.sh, and prints the medians, the difference, the sizes
# and the machine.
#
#   ./scripts/bench/secrets_env.sh            # 2000 runs each
#   RUNS=200 ./scripts/bench/secrets_env.sh   # a quick look
#
# Results: target/bench/secrets_env.json (hyperfine's export) and target/bench/secrets_env.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${RUNS:-2000}

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run this as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bin=$(./scripts/build-secrets-env.sh)
busybox=/bin/busybox

# The volume: ..<timestamp>/NAME, ..data -> ..<timestamp>, NAME -> ..data/NAME.
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
work=$(mktemp -d "$base/secrets-env-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
vol="$work/secrets-store"
gen="..2026_11_30_10_55_09.123456789"
mkdir -p "$vol/$gen" "$work/empty"
for i in $(seq -w 1 50); do
  # Values of realistic sizes: 24 to 180 bytes (passwords, tokens, connection strings).
  head -c $((18 + 10#$i * 3)) /dev/urandom | base64 -w0 > "$vol/$gen/SECRET_$i"
  ln -s "..data/SECRET_$i" "$vol/SECRET_$i"
done
ln -s "$gen" "$vol/..data"

out="$root/target/bench"
mkdir -p "$out"
hyperfine -N --style basic --warmup 200 --runs "$runs" \
  --export-json "$out/secrets_env.json" \
  -n bare "$busybox true" \
  -n "wrapped, no variables" "$bin --dir $work/empty -- $busybox true" \
  -n "wrapped, 50 variables" "$bin --dir $vol -- $busybox true" >&2

python3 - "$out/secrets_env.json" "$bin" "$runs" > "$out/secrets_env.md" <<'PY'
import json, os, platform, subprocess, sys

results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ms = lambda s: s * 1000
bare = results["bare"]["median"]
model = next(
    (l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
     if l.startswith("Model name")),
    "unknown",
)
print(f"Command: `RUNS={sys.argv[3]} ./scripts/bench/secrets_env.sh` (hyperfine -N, {sys.argv[3]} runs each after 200 warm-up runs).")
load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
print(f"Machine: {os.cpu_count()} × {model} (`nproc`: {os.cpu_count()}), Linux {platform.release()}; load average {load} at the end.")
print()
print("| run | median | mean ± σ | min | added at the median |")
print("| --- | --- | --- | --- | --- |")
for name, r in results.items():
    added = "" if name == "bare" else f"{ms(r['median'] - bare):.2f} ms"
    print(f"| {name} | {ms(r['median']):.2f} ms | {ms(r['mean']):.2f} ± {ms(r['stddev']):.2f} ms | {ms(r['min']):.2f} ms | {added} |")
print()
print(f"Binary: `{os.path.relpath(sys.argv[2])}`, {os.path.getsize(sys.argv[2]):,} bytes (stripped, static-pie).")
PY
cat "$out/secrets_env.md"
