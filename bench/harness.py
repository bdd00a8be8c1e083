"""What every benchmark shares: a durable throwaway server, a fresh database per scenario,
median-of-N timing, and the report table with ratios and targets."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from sluice import EventData, EventStore
from sluice.storage.postgres import migrations

REPETITIONS = 5
_database_numbers = itertools.count(1)


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """One line of the report: Sluice against its baseline (higher is better unless ``unit`` is ms)."""

    scenario: str
    sluice: float
    baseline: float | None
    unit: str
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.sluice / self.baseline


class Databases:
    """Fresh databases on one server, each with Sluice's schema installed."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn

    def dsn(self, database: str) -> str:
        return urlunsplit(urlsplit(self.admin_dsn)._replace(path="/" + database))

    async def fresh(self) -> str:
        name = f"bench_{next(_database_numbers)}"
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f"CREATE DATABASE {name}")
            # Start each scenario without the previous one's dirty pages: a checkpoint it triggered
            # would otherwise flush (and stall fsyncs) in the middle of this one.
            await admin.execute("CHECKPOINT")
        finally:
            await admin.close()
        dsn = self.dsn(name)
        connection = await asyncpg.connect(dsn)
        try:
            await migrations.migrate(connection, "sluice")
        finally:
            await connection.close()
        return dsn


async def median_rate(run: Callable[[], Awaitable[int]], repetitions: int = REPETITIONS) -> float:
    """Median of ``repetitions`` runs of (work items done) / seconds."""
    rates = []
    for _ in range(repetitions):
        started = time.perf_counter()
        done = await run()
        rates.append(done / (time.perf_counter() - started))
    return statistics.median(rates)


async def compare_rates(
    sluice: Callable[[], Awaitable[float]],
    baseline: Callable[[], Awaitable[float]],
    repetitions: int = REPETITIONS,
) -> tuple[float, float]:
    """Medians of Sluice's and the baseline's rates, measured alternately (Sluice, baseline,
    Sluice, ...) so that drift in the machine (fsync latency, checkpoints) hits both alike."""
    sluice_rates, baseline_rates = [], []
    for _ in range(repetitions):
        sluice_rates.append(await sluice())
        baseline_rates.append(await baseline())
    return statistics.median(sluice_rates), statistics.median(baseline_rates)


def timed_rate(run: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[float]]:
    """Wrap a run that returns the work it did into one that returns its rate per second."""

    async def rate() -> float:
        started = time.perf_counter()
        done = await run()
        return done / (time.perf_counter() - started)

    return rate


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def print_report(title: str, rows: list[Comparison]) -> None:
    print(f"\n{title}")
    header = f"{'scenario':<46} {'sluice':>12} {'baseline':>12} {'ratio':>7}  {'target':<18} met"
    print(header)
    print("-" * len(header))
    for row in rows:
        baseline = f"{row.baseline:,.0f}" if row.baseline is not None else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        met = "" if row.met is None else ("yes" if row.met else "NO")
        value = f"{row.sluice:,.1f}" if row.unit == "ms" else f"{row.sluice:,.0f}"
        print(
            f"{row.scenario + ' (' + row.unit + ')':<46} {value:>12} {baseline:>12} {ratio:>7}  {row.target:<18} {met}"
        )


async def measure_delivery_latency(
    writer: EventStore,
    stream_name: str,
    deliveries: AsyncIterator[Any],
    *,
    total: int,
    batch: int,
    events_per_second: int = 1000,
) -> tuple[float, list[float]]:
    """Append ``total`` events to ``stream_name`` at ``events_per_second`` (batches of ``batch``) while
    ``deliveries`` (a subscription, in-process or remote) receives them; returns the rate achieved and the
    append-to-delivery latency of every event in milliseconds. 50 warm-up events come first, so that the
    figures are the steady state (connections open, statements prepared)."""
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        async for event in deliveries:
            number = event.data["n"]
            if number < 0:  # warm-up
                continue
            latencies.append((time.perf_counter() - sent[number]) * 1000)
            if len(latencies) == total:
                return

    subscriber = asyncio.create_task(receive())
    try:
        await asyncio.gather(*(writer.append(stream_name, EventData("Tick", {"n": -1})) for _ in range(50)))
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        pending: set[asyncio.Task[Any]] = set()
        for first in range(0, total, batch):
            delay = start + first / events_per_second - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            for number in range(first, first + batch):
                sent[number] = now
            task = asyncio.create_task(
                writer.append(stream_name, [EventData("Tick", {"n": n}) for n in range(first, first + batch)])
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.wait_for(subscriber, timeout=60)
        return total / (time.perf_counter() - start), latencies
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
