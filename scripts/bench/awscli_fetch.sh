#!/bin/sh
# The init container teams hand-roll today: the AWS CLI in a shell script, the same API calls as
# the boto3 script (GetParameters in batches of 10, one GetSecretValue per secret, in order), each
# value written to its file. Every `aws` is a new process that loads its credentials again.
# usage: awscli_fetch.sh MOUNT_DIR PARAM_NAME... -- SECRET_NAME...
set -eu
out=$1; shift
aws=${AWS_CLI:-aws}
batch=""; n=0
flush() {
  [ -n "$batch" ] || return 0
  # shellcheck disable=SC2086 # the names are one word each
  "$aws" ssm get-parameters --with-decryption --names $batch \
    --query 'Parameters[].[Name,Value]' --output text |
  while IFS="$(printf '\t')" read -r name value; do
    printf '%s' "$value" > "$out/$(printf '%s' "$name" | tr / _)"
  done
  batch=""; n=0
}
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  batch="$batch $1"; n=$((n + 1)); shift
  [ "$n" -lt 10 ] || flush
done
flush
[ $# -gt 0 ] && shift
for secret in "$@"; do
  value=$("$aws" secretsmanager get-secret-value --secret-id "$secret" \
    --query SecretString --output text)
  printf '%s' "$value" > "$out/$(printf '%s' "$secret" | tr / _)"
done
