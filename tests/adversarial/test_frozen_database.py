"""A frozen database (SIGSTOP: connections open, nothing answers) must not freeze the callers' own time
limits. Cancelling a statement used to wait until the server confirmed the cancel, that is until it was
resumed: a cancelled append, a readiness probe's time limit or a gRPC deadline all hung with it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

import sluice
from sluice import EventData
from sluice.observability.health.checks import check_readiness
from tests.faults.database import FaultyDatabase

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_cancelled_append_returns_at_once(freezable_database: FaultyDatabase) -> None:
    async with await sluice.connect(freezable_database.dsn) as store:
        await store.append("orders", EventData("Placed", {"n": 1}))
        freezable_database.server.pause()
        try:
            append = asyncio.create_task(store.append("orders", EventData("Placed", {"n": 2})))
            await asyncio.sleep(1)
            assert not append.done()
            append.cancel()
            done, _ = await asyncio.wait({append}, timeout=5)
            assert done, "the cancelled append waited for the frozen database"
        finally:
            freezable_database.server.resume()
        await store.append("orders", EventData("Placed", {"n": 3}))  # the pool serves again


async def test_readiness_answers_within_its_time_limit(freezable_database: FaultyDatabase) -> None:
    async with await sluice.connect(freezable_database.dsn) as store:
        assert (await check_readiness(store)).ready
        freezable_database.server.pause()
        try:
            started = time.monotonic()
            probe = asyncio.create_task(check_readiness(store, probe_timeout=timedelta(seconds=1)))
            done, _ = await asyncio.wait({probe}, timeout=6)
            assert done, "the readiness probe waited for the frozen database"
            assert not probe.result().ready
            assert time.monotonic() - started < 6
        finally:
            freezable_database.server.resume()
        assert (await check_readiness(store)).ready
