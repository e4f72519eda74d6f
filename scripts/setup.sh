#!/usr/bin/env bash
# Set up everything mlconsole needs on a Debian machine: the lab's servers from
# apt (Prometheus, Alertmanager, and VictoriaMetrics for the scale lab), the Python
# venv from the exact pins in requirements.lock, and MLflow (the lab's model
# registry) in a venv of its own from lab/mlflow.lock, and the project's tools
# (import-linter, pipx) in another from scripts/tools.lock.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
command -v tmux >/dev/null || need_apt+=(tmux)
# The scale lab (`mlconsole lab up --scale N`) keeps its series in VictoriaMetrics.
command -v victoria-metrics >/dev/null || need_apt+=(victoria-metrics)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager victoria-metrics tmux curl >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: mlconsole needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-lock
if ! cmp -s requirements.lock "$stamp" 2>/dev/null; then
  echo "setup: installing pinned Python packages (requirements.lock)" >&2
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
  cp requirements.lock "$stamp"
fi
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .

# MLflow pins a world of its own, so it gets its own venv; the console only speaks its
# REST API. uv (pinned in requirements.lock) installs it in a fraction of pip's time,
# and compiled bytecode saves every `lab up` from compiling mlflow's modules again.
mlflow_stamp=.venv-mlflow/.installed-lock
if ! cmp -s lab/mlflow.lock "$mlflow_stamp" 2>/dev/null; then
  if [ ! -x .venv-mlflow/bin/python ]; then
    echo "setup: creating .venv-mlflow (MLflow for the lab's model registry)" >&2
    .venv/bin/uv venv -q --python "$PYTHON" .venv-mlflow
  fi
  echo "setup: installing pinned MLflow packages into .venv-mlflow (lab/mlflow.lock)" >&2
  .venv/bin/uv pip install -q --compile-bytecode --python .venv-mlflow/bin/python \
    -r lab/mlflow.lock
  cp lab/mlflow.lock "$mlflow_stamp"
fi
# The project's own tools, in a venv of their own (pinned in scripts/tools.lock):
# import-linter checks the house's import rules (pyproject.toml, [tool.importlinter]),
# and pipx is one of the two installs the README shows (tests/test_install.py). Their
# dependency click would make httpx import its own command line (and rich, pygments)
# on every start, were it in the console's venv.
tools_stamp=.venv-tools/.installed-lock
if ! cmp -s scripts/tools.lock "$tools_stamp" 2>/dev/null; then
  if [ ! -x .venv-tools/bin/python ]; then
    echo "setup: creating .venv-tools (import-linter, pipx)" >&2
    .venv/bin/uv venv -q --python "$PYTHON" .venv-tools
  fi
  echo "setup: installing pinned tools into .venv-tools (scripts/tools.lock)" >&2
  .venv/bin/uv pip install -q --python .venv-tools/bin/python -r scripts/tools.lock
  cp scripts/tools.lock "$tools_stamp"
fi
echo "setup: ready ($(.venv/bin/mlconsole --version))" >&2
