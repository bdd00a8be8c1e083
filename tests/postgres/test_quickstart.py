"""The README's quick start runs as written, on both backends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart.py"


@pytest.mark.parametrize("backend", ["memory", "postgres"])
def test_quickstart_runs(backend: str, request: pytest.FixtureRequest) -> None:
    url = "memory://" if backend == "memory" else request.getfixturevalue("fresh_database")
    result = subprocess.run(
        [sys.executable, str(QUICKSTART), url], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "appended at offsets (0,)"
    assert lines[1].startswith("read 0 OrderPlaced {'order_id': 'o-1', 'total_cents': 1250}")
    assert lines[2] == "subscribed 0"
    assert lines[3] == "dequeued {'to': 'ada@example.com', 'template': 'welcome'} attempt 1"
