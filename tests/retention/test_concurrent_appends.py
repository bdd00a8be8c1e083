"""On PostgreSQL, a large prune deletes in short transactions of its own: appends to the same
partition keep flowing while it runs, and the log stays dense and whole."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

import sluice
from sluice import EventData, EventStore
from sluice.services.retention import RetentionLimits, prune_stream

pytestmark = pytest.mark.postgres

LOADED = 30_000


@pytest.fixture
async def postgres_store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    store = await sluice.connect(postgres_dsn)
    yield store
    await store.close()


async def test_appends_keep_flowing_while_a_prune_of_many_events_runs(postgres_store: EventStore) -> None:
    store = postgres_store
    for _ in range(LOADED // 1000):
        await store.append("busy", [EventData("E", b"p" * 50) for _ in range(1000)])
    pruning = asyncio.create_task(prune_stream(store, "busy", RetentionLimits(max_event_count=100), batch_size=500))
    latencies: list[float] = []
    appended: list[int] = []
    while not pruning.done():
        started = time.perf_counter()
        result = await store.append("busy", EventData("E", b"live"))
        latencies.append(time.perf_counter() - started)
        appended.extend(result.offsets)
    report = await pruning
    # Appends went on during the prune, none waited for it, and offsets stayed dense.
    assert len(appended) >= 20, f"only {len(appended)} appends completed while the prune ran"
    assert max(latencies) < 0.5, f"an append waited {max(latencies):.3f} s"
    assert appended == list(range(LOADED, LOADED + len(appended)))
    # The prune removed what was beyond the limit when it planned (a few appends may have come
    # first), never an event appended after that.
    first = report.oldest_retained_offsets[0]
    assert LOADED - 100 <= first <= LOADED - 100 + len(appended)
    assert report.pruned_events == first
    assert report.pruned_bytes == first * 50  # only loaded events (50 bytes each) were old enough
    remaining = [event.offset async for event in store.read_stream("busy")]
    assert remaining == list(range(first, LOADED + len(appended)))


async def test_a_prune_batch_touches_the_counter_row_only_after_its_delete(
    postgres_store: EventStore, postgres_dsn: str
) -> None:
    """A prune batch whose DELETE waits (here for a row another transaction holds) must not hold the
    partition's counter row meanwhile: appends to the partition go on, and the batch then completes."""
    store = postgres_store
    await store.append("held", [EventData("E", b"p" * 10) for _ in range(50)])
    admin = await asyncpg.connect(postgres_dsn)
    holder = admin.transaction()
    await holder.start()
    await admin.execute(
        "SELECT 1 FROM sluice.events e JOIN sluice.streams s USING (stream_id)"
        " WHERE s.name = 'held' AND e.event_offset = 5 FOR UPDATE"
    )
    pruning = asyncio.create_task(prune_stream(store, "held", RetentionLimits(max_event_count=10)))
    try:
        blocked = "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))"
        for _ in range(200):
            if await admin.fetchval(blocked):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the prune's DELETE never waited for the held row")
        appended = await asyncio.wait_for(store.append("held", EventData("E", b"live")), timeout=5)
        assert appended.offsets == (50,)
        assert not pruning.done()
        await holder.rollback()
        report = await asyncio.wait_for(pruning, timeout=10)
    finally:
        pruning.cancel()
        await asyncio.gather(pruning, return_exceptions=True)
        await admin.close()
    assert report.pruned_events == 40  # planned before the live append: 50 events down to 10
    assert (await store.get_stream("held")).partition_heads[0].first_offset == 40
