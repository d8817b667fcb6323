#!/usr/bin/env bash
# Creates (or reuses) .venv with the pinned test tools: moto (AWS API emulator),
# kubernetes-validate (offline Kubernetes schema validation), helm-python-sdk (chart rendering),
# cel-python (evaluates the webhooks' matchConditions), parliament (lints IAM policies).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
req="$root/scripts/requirements-test.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
