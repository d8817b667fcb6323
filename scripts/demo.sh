#!/usr/bin/env bash
# The main job, end to end on one machine: start the AWS API emulator (moto), seed the example
# parameter and secret, run `webhook inject` on the example pod, run the pod's containers with
# podman as a node would (the injector image's init container with its command, args, env and
# mounts, read-only root, non-root user; then the app container from a busybox image), and show
# the files as the app container sees them, from inside it. Stops everything it started, even on
# Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh runs containers with podman as root (rootless podman needs subuid setup): run it as root, e.g. sudo ./scripts/demo.sh" >&2
  exit 1
fi

echo "== setting up (.venv with pinned moto; podman, runc, busybox-static; cargo build; the images, from scratch)"
./scripts/venv.sh
./scripts/system-tools.sh
cargo build --workspace --bins --locked --quiet
./scripts/images.sh --profile dev --tag test
bin="$root/target/debug"
py="$root/.venv/bin/python"

work=$(mktemp -d)
moto_pid=""
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
echo "== starting moto on $endpoint"
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do
  "$py" -c "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/')" 2>/dev/null && break
  sleep 0.1
done

echo "== seeding /test/parameter (SecureString) and test/secret (Secrets Manager)"
AWS_ACCESS_KEY_ID=seed AWS_SECRET_ACCESS_KEY=seed "$py" - "$endpoint" <<'PY'
import json, sys, boto3
endpoint = sys.argv[1]
ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=endpoint)
ssm.put_parameter(Name="/test/parameter", Value="gonitest", Type="SecureString")
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint)
sm.create_secret(Name="test/secret",
                 SecretString=json.dumps({"username": "example", "password": "example1234"}, separators=(",", ":")))
PY

echo "== the example pod, as EKS hands it to the webhook (IRSA env and token volume added)"
"$bin/kubelet-sim" eks-irsa --role-arn arn:aws:iam::123456789012:role/demo-app --region us-east-1 \
  --env "AWS_ENDPOINT_URL=$endpoint" <manifests/examples/pod.yaml >"$work/pod.json"
# nginx cannot be pulled here: the app container runs the busybox image and looks at the volume.
"$py" - "$work/pod.json" <<'PY'
import json, sys
path = sys.argv[1]
pod = json.load(open(path))
app = pod["spec"]["containers"][0]
app["image"] = "localhost/secrets-injector/busybox:test"
app["command"] = ["/bin/busybox", "sh", "-c",
                  "cd /mnt/secrets-store && busybox ls -l"
                  " && for f in *; do echo \"--- $f\"; busybox cat \"$f\"; echo; done"]
json.dump(pod, open(path, "w"))
PY

echo "== webhook inject"
"$bin/webhook" inject -f "$work/pod.json" \
  --injector-image ghcr.io/secrets-injector/injector:test --default-region us-east-1 >"$work/pod.injected.yaml"
grep -nE 'secrets-injector|/usr/local/bin/injector|mountPath' "$work/pod.injected.yaml" | sed 's/^/  /'

echo "== running the pod with podman as a node would; the app container's view of /mnt/secrets-store:"
"$bin/kubelet-sim" run <"$work/pod.injected.yaml"
