"""Group commit (issue: stream operations): 200 concurrent producers appending single events for a
fixed time, with batching off (``store.append``), on (``AppendBatcher``), and the raw single-row
INSERT limit (200 producers over an asyncpg pool, one INSERT transaction per event, into a table
like ``events``), measured alternately in the same run on the durable server."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pydantic_core
from prometheus_client import CollectorRegistry

import sluice
from bench.harness import Comparison, Databases
from sluice import EventData, EventStore
from sluice.services.group_commit import AppendBatcher, GroupCommitMetrics

PRODUCERS = 200
POOL_SIZE = 20
"""Connections for every mode alike (Sluice's pool and the raw pool)."""
SECONDS_PER_RUN = 4.0
REPETITIONS = 3
LINGER = timedelta(milliseconds=2)
MAX_BATCH = 500

RAW_TABLE = "CREATE TABLE raw_events (LIKE sluice.events INCLUDING ALL)"
RAW_INSERT = """
INSERT INTO raw_events (stream_id, partition, event_offset, event_id, event_type, schema_version,
                        content_type, data, metadata, created_at)
VALUES ($1, 0, $2, $3, 'OrderPlaced', 1, 'application/json', $4, '{}', clock_timestamp())"""


def order(n: int) -> dict[str, Any]:
    return {"order_id": f"o-{n}", "customer": f"c-{n % 97}", "total_cents": 1000 + n, "currency": "EUR"}


async def producers_for(seconds: float, append_one: Callable[[int], Awaitable[None]]) -> tuple[int, float]:
    """Run PRODUCERS loops of ``append_one`` for ``seconds``; the events they completed, and per second."""
    numbers = itertools.count()
    done = 0
    deadline = time.perf_counter() + seconds

    async def producer() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await append_one(next(numbers))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
    return done, done / (time.perf_counter() - started)


async def check_stored(store: EventStore, stream: str, appended: int) -> None:
    """Every append a run counted is in the stream (offsets are dense, so the head is the count)."""
    info = await store.get_stream(stream)
    head = info.partition_heads[0].head
    assert head == appended, f"{stream}: {appended} appends answered but the head is {head}"


def metric_total(metrics: GroupCommitMetrics, name: str) -> float:
    """A metric's value summed over its streams."""
    return sum(
        sample.value for metric in metrics.registry.collect() for sample in metric.samples if sample.name == name
    )


async def run(databases: Databases) -> list[Comparison]:
    dsn = await databases.fresh()
    store = await sluice.connect(dsn, pool_min_size=POOL_SIZE, pool_max_size=POOL_SIZE)
    metrics = GroupCommitMetrics(CollectorRegistry(auto_describe=True))
    batcher = AppendBatcher(store, linger=LINGER, max_batch=MAX_BATCH, metrics=metrics)
    raw_pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
    assert raw_pool is not None
    await raw_pool.execute(RAW_TABLE)
    raw_offsets = itertools.count()
    rounds = itertools.count()

    async def off(seconds: float) -> float:
        stream = f"off-{next(rounds)}"

        async def append_one(n: int) -> None:
            await store.append(stream, EventData("OrderPlaced", order(n)))

        appended, rate = await producers_for(seconds, append_one)
        await check_stored(store, stream, appended)
        return rate

    async def on(seconds: float) -> float:
        stream = f"on-{next(rounds)}"

        async def append_one(n: int) -> None:
            await batcher.append(stream, EventData("OrderPlaced", order(n)))

        appended, rate = await producers_for(seconds, append_one)
        await check_stored(store, stream, appended)
        return rate

    async def raw(seconds: float) -> float:
        async def append_one(n: int) -> None:
            # One transaction per event (autocommit), offsets from a client-side counter: no
            # counter row, no lock, no checks; the limit of single-row writes on this server.
            await raw_pool.execute(RAW_INSERT, 1, next(raw_offsets), uuid.uuid4(), pydantic_core.to_json(order(n)))

        return (await producers_for(seconds, append_one))[1]

    modes: dict[str, Callable[[float], Awaitable[float]]] = {"off": off, "on": on, "raw": raw}
    rates: dict[str, list[float]] = {name: [] for name in modes}
    try:
        for measure in modes.values():  # warm-up: connections open, statements prepared
            await measure(0.5)
        for _ in range(REPETITIONS):
            for name, measure in modes.items():
                rates[name].append(await measure(SECONDS_PER_RUN))
    finally:
        await batcher.close()
        await raw_pool.close()
        await store.close()
    off_rate, on_rate, raw_rate = (statistics.median(rates[name]) for name in ("off", "on", "raw"))
    flushes = metric_total(metrics, "sluice_group_commit_batch_size_count")
    appended = metric_total(metrics, "sluice_group_commit_batch_size_sum")
    print(
        f"group commit: {PRODUCERS} producers, pool {POOL_SIZE}, linger {LINGER.total_seconds() * 1000:g} ms, "
        f"max batch {MAX_BATCH}; mean batch {appended / max(flushes, 1):.0f} events; runs (events/s): "
        + ", ".join(f"{name} {[round(rate) for rate in rates[name]]}" for name in modes)
    )
    return [
        Comparison("raw single-row INSERT", raw_rate, None, "events/s"),
        Comparison("batching off (store.append)", off_rate, None, "events/s"),
        Comparison(
            "batching on (AppendBatcher) vs off", on_rate, off_rate, "events/s", ">= 5x off", on_rate >= 5 * off_rate
        ),
        Comparison(
            "batching on vs raw INSERT", on_rate, raw_rate, "events/s", ">= 5x raw INSERT",
            on_rate >= 5 * raw_rate,
        ),
    ]  # fmt: skip
