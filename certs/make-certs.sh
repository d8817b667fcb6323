#!/usr/bin/env bash
# Makes the webhook's serving certificate and a private CA for it, for clusters without
# cert-manager. Writes ca.crt, tls.crt, tls.key, secret.yaml (the kubernetes.io/tls Secret
# secrets-injector-tls) and ca-bundle.txt (the base64 CA for the webhook's caBundle) to the output
# directory, by default the one manifests/overlays/provided-certs reads:
#
#   certs/make-certs.sh && kubectl apply -k manifests/overlays/provided-certs
#
# Uses `webhook certs` when the webhook binary is found ($WEBHOOK, else `webhook` on PATH), else
# the openssl command. The CA's private key is never written: nothing else can be signed with it,
# and a rotation makes a new CA (see certs/README.md for the order that keeps requests working).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out_dir="$root/manifests/overlays/provided-certs/tls"
use_openssl=false
service=secrets-injector
namespace=secrets-injector
days=365

usage() {
  cat <<USAGE
usage: $0 [--out-dir DIR] [--service NAME] [--namespace NAME] [--days N] [--openssl]
  --out-dir DIR     where to write the files (default: $out_dir)
  --service NAME    the webhook's Service (default: $service, as shipped)
  --namespace NAME  its namespace, and the Secret's (default: $namespace)
  --days N          validity of the serving certificate (default: $days)
  --openssl         use the openssl command even when the webhook binary is available
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out-dir) out_dir=${2:?--out-dir needs a directory}; shift 2 ;;
    --service) service=${2:?--service needs a name}; shift 2 ;;
    --namespace) namespace=${2:?--namespace needs a name}; shift 2 ;;
    --openssl) use_openssl=true; shift ;;
    --days) days=${2:?--days needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make-certs.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$days" in
  ''|*[!0-9]*|0) echo "make-certs.sh: --days must be a positive number, got: $days" >&2; exit 2 ;;
esac
for name in "$service" "$namespace"; do
  if ! [[ "$name" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]]; then
    echo "make-certs.sh: $name is not a valid Kubernetes name (lowercase letters, digits and '-')" >&2
    exit 2
  fi
done

webhook_bin=${WEBHOOK:-$(command -v webhook || true)}
mkdir -p "$out_dir"
# Only this user may read the key material while it is on disk.
chmod 700 "$out_dir"

if [ "$use_openssl" = false ] && [ -n "$webhook_bin" ]; then
  echo "make-certs.sh: using $webhook_bin certs" >&2
  "$webhook_bin" certs --service "$service" --namespace "$namespace" --days "$days" \
    --out-dir "$out_dir"
else
  if ! command -v openssl >/dev/null; then
    echo "make-certs.sh: neither the webhook binary nor openssl was found; install one of them" >&2
    exit 1
  fi
  echo "make-certs.sh: using openssl" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  dns="$service.$namespace.svc"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$work/ca.key" -out "$work/ca.crt" -days $((days + 30)) \
      -subj "/CN=secrets-injector-ca" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
      -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$work/tls.key" -out "$work/tls.csr" -subj "/CN=$dns"
    cat >"$work/ext.cnf" <<EXT
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$service,DNS:$service.$namespace,DNS:$dns,DNS:$dns.cluster.local
EXT
    openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$days" -extfile "$work/ext.cnf" \
      -out "$work/tls.crt"
    # PKCS#8, the most widely read private key encoding.
    openssl pkcs8 -topk8 -nocrypt -in "$work/tls.key" -out "$out_dir/tls.key"
  )
  cp "$work/ca.crt" "$out_dir/ca.crt"
  cp "$work/tls.crt" "$out_dir/tls.crt"
  b64() { base64 <"$1" | tr -d '\n'; }
  printf '%s' "$(b64 "$out_dir/ca.crt")" >"$out_dir/ca-bundle.txt"
  (
    umask 077
    cat >"$out_dir/secret.yaml" <<SECRET
apiVersion: v1
kind: Secret
metadata:
  name: secrets-injector-tls
  namespace: $namespace
type: kubernetes.io/tls
data:
  ca.crt: $(b64 "$out_dir/ca.crt")
  tls.crt: $(b64 "$out_dir/tls.crt")
  tls.key: $(b64 "$out_dir/tls.key")
SECRET
  )
fi

for f in ca.crt tls.crt tls.key; do
  if [ ! -s "$out_dir/$f" ]; then
    echo "make-certs.sh: $out_dir/$f was not written" >&2
    exit 1
  fi
done
chmod 600 "$out_dir/tls.key"
echo "make-certs.sh: wrote ca.crt, tls.crt, tls.key, secret.yaml, ca-bundle.txt to $out_dir" >&2
