#!/usr/bin/env bash
# Every check and test, as CI runs them. Extra arguments go to pytest.
# pytest runs on SLUICE_TEST_WORKERS pytest-xdist workers (default 3; 1 runs the tests one at a time in this
# process). --dist loadgroup keeps each xdist group (the tests of a machine-wide resource, see tests/conftest.py)
# on one worker. Most tests wait on servers and clusters: with 2 workers the 2 cores were idle 48% of the time
# (vmstat), and 3 workers took the warm suite from 693 s to 538 s (2,007 passed both times, 2026-12-07). More
# do not help: the node's tests, one after another on one worker, take about 490 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1
workers="${SLUICE_TEST_WORKERS:-3}"
if ! [[ "${workers}" =~ ^[1-9][0-9]*$ ]]; then
    echo "SLUICE_TEST_WORKERS must be a positive whole number, not '${workers}'" >&2
    exit 2
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== import layers (import-linter: contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache --no-logo
echo "== generated files are current"
scripts/generate.sh --check
echo "== pytest (${workers} worker(s))"
if [ "${workers}" -eq 1 ]; then
    .venv/bin/pytest "$@"
else
    .venv/bin/pytest --numprocesses "${workers}" --dist loadgroup "$@"
fi
