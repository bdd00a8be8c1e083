"""Fixtures of the alert-rule and dashboard tests: promtool, built from the Prometheus Go module by
scripts/prometheus/build.sh (instant once built; `./dev test` builds it before pytest runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "prometheus" / "build.sh"
RULES = REPOSITORY_ROOT / "deploy" / "prometheus" / "sluice-alerts.yaml"
RULE_TESTS = REPOSITORY_ROOT / "deploy" / "prometheus" / "tests"
DASHBOARDS = REPOSITORY_ROOT / "deploy" / "grafana"


@pytest.fixture(scope="session")
def promtool() -> Path:
    completed = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0, f"{BUILD_SCRIPT} failed with exit code {completed.returncode}"
    assert lines, f"{BUILD_SCRIPT} printed nothing"
    binary = Path(lines[-1]) / "promtool"
    assert binary.is_file(), f"{BUILD_SCRIPT} printed {lines[-1]}, which has no promtool"
    return binary
