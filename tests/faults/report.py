"""How long each component took to resume after the database came back: printed as one line per
measurement (``RESUME consume-workers kill-9: 2.4 s``, visible with ``pytest -s``) and appended to
``.cache/faults-report.json`` for the closing note of docs/faults.md."""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path

REPORT_PATH = Path(__file__).resolve().parents[2] / ".cache" / "faults-report.json"


def report_resume(component: str, fault: str, seconds: float | None, *, within: float) -> None:
    """Print and record one resume time (None: it did not resume within ``within`` seconds)."""
    shown = f"{seconds:.1f} s" if seconds is not None else f"did not resume within {within:.0f} s"
    print(f"RESUME {component} {fault}: {shown}", flush=True)
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "component": component,
        "fault": fault,
        "resume_seconds": None if seconds is None else round(seconds, 2),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with REPORT_PATH.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers append to the same file
        try:
            entries = json.loads(REPORT_PATH.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = []
        if not isinstance(entries, list):
            entries = []
        entries.append(entry)
        REPORT_PATH.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")


def first_after(times: list[float], moment: float) -> float | None:
    """Seconds from ``moment`` to the first time in ``times`` at or after it; None if there is none."""
    later = [at for at in times if at >= moment]
    return min(later) - moment if later else None
