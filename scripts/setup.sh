#!/usr/bin/env bash
# Set up everything mlconsole needs on a Debian machine: the lab's servers from
# apt, and the Python venv from the exact pins in requirements.lock.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
command -v tmux >/dev/null || need_apt+=(tmux)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager tmux curl >/dev/null
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
echo "setup: ready ($(.venv/bin/mlconsole --version))" >&2
