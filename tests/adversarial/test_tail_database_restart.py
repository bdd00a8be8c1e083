"""``sluice tail`` rides out a PostgreSQL kill -9 and restart: it used to exit 1 on the first blip, with
asyncpg's tracebacks on stderr. Now it notes the outage in one line, resumes at the next offset and prints
what was appended after the restart."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import sluice
from sluice import EventData
from tests.faults.database import Fault, FaultyDatabase

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SLUICE = str(Path(sys.executable).with_name("sluice"))


async def test_tail_survives_a_database_restart(freezable_database: FaultyDatabase, tmp_path: Path) -> None:
    async with await sluice.connect(freezable_database.dsn) as store:
        await store.append("orders", EventData("Placed", {"n": 0}))
    out, err = tmp_path / "tail.out", tmp_path / "tail.err"
    arguments = ["tail", "orders", "--from-beginning", "--limit", "2", "-o", "json", "--dsn", freezable_database.dsn]
    with out.open("w") as stdout, err.open("w") as stderr:
        tail = await asyncio.create_subprocess_exec(SLUICE, *arguments, stdout=stdout, stderr=stderr)
    try:
        for _ in range(100):
            if out.read_text().strip():
                break
            await asyncio.sleep(0.1)
        await asyncio.to_thread(freezable_database.crash_and_restart, Fault.KILL_9)
        await asyncio.sleep(0.5)
        assert tail.returncode is None, err.read_text()
        async with await sluice.connect(freezable_database.dsn) as store:
            await store.append("orders", EventData("Placed", {"n": 1}))
        exit_code = await asyncio.wait_for(tail.wait(), 30)
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()
    assert exit_code == 0, err.read_text()
    assert len(out.read_text().splitlines()) == 2
    assert "Traceback" not in err.read_text()
