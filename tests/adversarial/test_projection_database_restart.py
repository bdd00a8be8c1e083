"""A running projection rides out a PostgreSQL kill -9 and restart: ``ProjectionRunner.run`` used to end
with ConnectionLostError (``sluice project`` exited 1, and again while the database was starting up: a
crash loop in Kubernetes). Now it waits with backoff, goes on from its stored checkpoint and projects
what was appended after the restart, each event once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

import sluice
from sluice import EventData
from sluice.core.errors import MigrationError
from sluice.services.projections import ProjectionRunner, sql_projection
from sluice.storage.postgres.store import PostgresEventStore
from tests.faults.database import Fault, FaultyDatabase

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TARGET: dict[str, Any] = {
    "table": "order_totals",
    "keyColumns": ["order_id"],
    "upserts": [{"eventType": "OrderPlaced", "columns": {"order_id": "$.order_id", "total": "$.total_cents"}}],
}


async def _rows(store: PostgresEventStore) -> list[tuple[Any, ...]]:
    async with store.acquire() as connection:
        return [
            tuple(row) for row in await connection.fetch("SELECT order_id, total FROM public.order_totals ORDER BY 1")
        ]


async def _eventually(store: PostgresEventStore, expected: list[tuple[Any, ...]]) -> None:
    for _ in range(150):
        with contextlib.suppress(sluice.ConnectionLostError, MigrationError):  # (the table is not created yet)
            if await _rows(store) == expected:
                return
        await asyncio.sleep(0.1)
    assert await _rows(store) == expected


async def test_running_projection_survives_a_database_restart(freezable_database: FaultyDatabase) -> None:
    store = await sluice.connect(freezable_database.dsn)
    assert isinstance(store, PostgresEventStore)
    runner = ProjectionRunner(sql_projection("totals", sources=["orders"], target=TARGET), store)
    running: asyncio.Task[None] | None = None
    try:
        await store.append("orders", EventData("OrderPlaced", {"order_id": "a", "total_cents": 1}))
        running = asyncio.create_task(runner.run())
        await _eventually(store, [("a", "1")])
        await asyncio.to_thread(freezable_database.crash_and_restart, Fault.KILL_9)
        await asyncio.sleep(1)
        assert not running.done(), running.exception()
        for _ in range(50):
            with contextlib.suppress(sluice.ConnectionLostError):
                await store.append("orders", EventData("OrderPlaced", {"order_id": "b", "total_cents": 2}))
                break
            await asyncio.sleep(0.1)
        await _eventually(store, [("a", "1"), ("b", "2")])
        runner.stop()
        await asyncio.wait_for(running, 10)
    finally:
        runner.stop()
        if running is not None and not running.done():
            running.cancel()
        if running is not None:
            with contextlib.suppress(BaseException):
                await running
        await store.close()
