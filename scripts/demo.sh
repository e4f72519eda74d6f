#!/usr/bin/env bash
# The demo: set up, start the lab (model service, MLflow, Prometheus, Alertmanager),
# break a model with a bad deploy, and open the console on the live incident.
# Quitting the console stops the lab (KEEP_LAB=1 keeps it running).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

mlconsole lab up
export MLCONSOLE_CONFIG="$(mlconsole lab config-path)"
if [ "${KEEP_LAB:-0}" != 1 ]; then
  trap 'mlconsole lab down' EXIT
fi
mlconsole lab inject bad-deploy --model fraud-detector
echo "demo: fraud-detector got a bad deploy (champion -> v4); its burn-rate alert fires within a minute and opens an incident." >&2
echo "demo: select the alert, then a acknowledge · t triage (its action step rolls back) · i timeline · x resolve · e export." >&2
mlconsole
