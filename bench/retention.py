"""Retention: prune 1,000,000 events while single-event appends go on, and compare the appends' p99
latency with the same appends when no cleanup runs (target: at most 2x), plus the pruning rate.

The two are measured in alternating windows (ROUNDS of them: appends alone for BASELINE_SECONDS /
ROUNDS, then appends while a prune takes the next 1/ROUNDS of the loaded events), so that both see the
same host: this machine's speed drifts by tens of percent within minutes, which made a baseline taken
first and a prune taken second differ by 1.4x-3.7x from run to run with nothing changed.

The events are loaded with appends of 1,000 (Sluice's fast bulk path), then the table is vacuumed
and checkpointed so that neither measurement pays for the load. The steady appends go to the SAME
partition that is being pruned, the hardest case: each prune batch also moves that partition's
first offset, on the counter row appends update.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

import sluice
from bench.harness import Comparison, Databases, percentile
from sluice import EventData, EventStore
from sluice.services.retention import RetentionLimits, prune_stream
from sluice.services.retention.pruning import DEFAULT_BATCH_SIZE, DEFAULT_DUTY_CYCLE

LOADED_EVENTS = 1_000_000
LOAD_BATCH = 1000
PAYLOAD = b"r" * 100
APPENDS_PER_SECOND = 200
BASELINE_SECONDS = 10.0
KEPT_EVENTS = 1000
ROUNDS = 5
STREAM = "history"


async def load(store: EventStore) -> float:
    """Append LOADED_EVENTS in batches of LOAD_BATCH; returns the load rate (events/s)."""
    started = time.perf_counter()
    for _ in range(LOADED_EVENTS // LOAD_BATCH):
        await store.append(STREAM, [EventData("Loaded", PAYLOAD) for _ in range(LOAD_BATCH)])
    return LOADED_EVENTS / (time.perf_counter() - started)


async def steady_appends(store: EventStore, *, until: asyncio.Future[Any] | None, seconds: float) -> list[float]:
    """Single-event appends every 1/APPENDS_PER_SECOND s, for ``seconds`` or until ``until`` is done;
    the latency of each in milliseconds."""
    latencies: list[float] = []
    interval = 1 / APPENDS_PER_SECOND
    started = time.perf_counter()
    tick = started
    while (until is None and time.perf_counter() - started < seconds) or (until is not None and not until.done()):
        before = time.perf_counter()
        await store.append(STREAM, EventData("Live", b"live"))
        latencies.append((time.perf_counter() - before) * 1000)
        tick += interval
        await asyncio.sleep(max(tick - time.perf_counter(), 0))
    return latencies


async def settle(dsn: str) -> None:
    """Vacuum the loaded table and checkpoint, so that neither measurement pays for the load."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM ANALYZE sluice.events")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def run(databases: Databases) -> list[Comparison]:
    dsn = await databases.fresh()
    store = await sluice.connect(dsn, pool_min_size=4, pool_max_size=4)
    try:
        load_rate = await load(store)
        await settle(dsn)
        await steady_appends(store, until=None, seconds=1.0)  # warm up: connections, prepared statements
        baseline: list[float] = []
        during: list[float] = []
        pruned_events = pruned_bytes = 0
        prune_seconds = 0.0
        for round_number in range(1, ROUNDS + 1):
            baseline += await steady_appends(store, until=None, seconds=BASELINE_SECONDS / ROUNDS)
            # Keep what the last round keeps, plus this round's share of the loaded events still to go.
            keep = KEPT_EVENTS + (LOADED_EVENTS - KEPT_EVENTS) * (ROUNDS - round_number) // ROUNDS
            started = time.perf_counter()
            pruning = asyncio.ensure_future(prune_stream(store, STREAM, RetentionLimits(max_event_count=keep)))
            during += await steady_appends(store, until=pruning, seconds=0)
            report = await pruning
            prune_seconds += time.perf_counter() - started
            pruned_events += report.pruned_events
            pruned_bytes += report.pruned_bytes
    finally:
        await store.close()
    baseline_p99, during_p99 = percentile(baseline, 0.99), percentile(during, 0.99)
    prune_rate = pruned_events / prune_seconds
    ratio = during_p99 / baseline_p99 if baseline_p99 else float("inf")
    print(
        f"retention: loaded {LOADED_EVENTS:,} events at {load_rate:,.0f}/s; pruned {pruned_events:,} events "
        f"({pruned_bytes:,} bytes) in {ROUNDS} rounds, {prune_seconds:.1f} s = {prune_rate:,.0f} events/s; "
        f"append p99 {baseline_p99:.2f} ms without cleanup ({len(baseline)} appends), {during_p99:.2f} ms while "
        f"pruning ({len(during)} appends): {ratio:.2f}x; p50 {percentile(baseline, 0.5):.2f} / "
        f"{percentile(during, 0.5):.2f} ms; max {max(baseline):.1f} / {max(during):.1f} ms"
    )
    return [
        Comparison("load, append batch 1000", load_rate, None, "events/s"),
        Comparison("append p99 at 200/s, no cleanup", baseline_p99, None, "ms"),
        Comparison("append p99 at 200/s, pruning 1M", during_p99, baseline_p99, "ms", "<= 2x no cleanup", ratio <= 2),
        Comparison(
            f"pruning rate ({DEFAULT_BATCH_SIZE}/batch, duty {DEFAULT_DUTY_CYCLE})", prune_rate, None, "events/s"
        ),
    ]
