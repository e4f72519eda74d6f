#!/usr/bin/env bash
# Set up, lint, type-check, and run the whole test suite, real servers included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff" >&2
ruff check .
ruff format --check console adapters screens lab bench
echo "== mypy" >&2
mypy
echo "== import-linter" >&2
.venv-tools/bin/lint-imports --no-cache
echo "== pytest" >&2
pytest -q --durations=15 "$@"
