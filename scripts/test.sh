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
echo "== import layers (import-linter: contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache --no-logo
echo "== generated files are current"
scripts/generate.sh --check
echo "== pytest"
.venv/bin/pytest "$@"
