#!/usr/bin/env bash
# Every check and test, as CI runs them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== generated files are current"
scripts/generate.sh --check
echo "== pytest"
.venv/bin/pytest "$@"
