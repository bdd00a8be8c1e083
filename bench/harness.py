"""What every benchmark shares: a durable throwaway server, a fresh database per scenario,
median-of-N timing, and the report table with ratios and targets."""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from sluice.backends.postgres import migrations

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
        return self.sluice / self.baseline  # type: ignore[operator]


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
