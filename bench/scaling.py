"""Scaling beyond one PostgreSQL (issue 18): streams spread over two servers against all on one.

STREAMS streams, each with one producer appending batches of BATCH events and one consumer group (one
member, ``consume_batches``) reading them, run for SECONDS_PER_RUN with (a) every stream on one durable
server and (b) the streams alternating between two durable servers, in alternating rounds; the report gives
the medians of the aggregate append and consume rates and the ratio (b)/(a), and what each server spent:
CPU (from ``/proc``: the postmaster, its live children and the children it reaped), commits
(``pg_stat_database``) and WAL syncs (``pg_stat_wal``).

Both layouts run the same client, WORKERS processes with a fixed share of the streams each, so only where
the streams live changes. The suite starts both servers itself (same settings, side by side on this machine),
and they share its cores and its disk: the ratio is the cost or headroom of splitting on one machine, not
what two machines would give.

``python -m bench.scaling PLAN`` is one worker process (PLAN is JSON, see ``worker``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

import sluice
from bench.consumer_groups import OPTIONS
from bench.harness import Comparison, Databases
from bench.runtime_core import events
from sluice import StreamConfig
from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings
from sluice.store.contracts.consumer_groups import GroupBatchConsumption

REPOSITORY = Path(__file__).parents[1]
STREAMS = 8
WORKERS = 2
BATCH = 100
SECONDS_PER_RUN = 5.0
WARM_UP_SECONDS = 1.0
REPETITIONS = 5
CONNECTIONS_PER_STREAM = 3
"""The producer's and the member's (which reads and heartbeats on its own connections)."""
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


# Pure helpers: where streams live, who drives them, what /proc says -------------------------------------


def place_streams(streams: int, servers: int) -> list[int]:
    """The server (0-based) of each stream: alternating, so every server holds an equal share (± 1)."""
    if streams < 1 or servers < 1:
        raise ValueError(f"need at least one stream and one server, not {streams} and {servers}")
    return [stream % servers for stream in range(streams)]


def worker_shares(streams: int, workers: int) -> list[list[int]]:
    """The streams each worker process drives: consecutive runs, as even as possible, none empty."""
    if workers < 1 or streams < workers:
        raise ValueError(f"cannot share {streams} stream(s) among {workers} worker(s)")
    size, extra = divmod(streams, workers)
    shares, start = [], 0
    for worker in range(workers):
        end = start + size + (worker < extra)
        shares.append(list(range(start, end)))
        start = end
    return shares


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessTimes:
    """One process's CPU as ``/proc/<pid>/stat`` gives it, in clock ticks."""

    pid: int
    parent_pid: int
    own_ticks: int
    """utime + stime."""
    reaped_children_ticks: int
    """cutime + cstime: children that exited and were waited for (a server's closed backends)."""


def parse_process_stat(text: str) -> ProcessTimes:
    """``/proc/<pid>/stat``: the command name may hold spaces and parentheses, so fields are counted
    after its closing parenthesis (field 3, the state, comes first there)."""
    pid = int(text[: text.index("(")])
    fields = text[text.rindex(")") + 2 :].split()
    if len(fields) < 15:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    utime, stime, cutime, cstime = (int(field) for field in fields[11:15])
    return ProcessTimes(pid, int(fields[1]), utime + stime, cutime + cstime)


def server_cpu_ticks(processes: Iterable[ProcessTimes], postmaster_pid: int) -> int:
    """A server's CPU: the postmaster's own, its reaped children's and its live children's."""
    total = 0
    for process in processes:
        if process.pid == postmaster_pid:
            total += process.own_ticks + process.reaped_children_ticks
        elif process.parent_pid == postmaster_pid:
            total += process.own_ticks
    return total


def read_process_times() -> list[ProcessTimes]:
    """Every process on the machine (those that exit while being read are left out)."""
    processes = []
    for folder in Path("/proc").iterdir():
        if folder.name.isdigit():
            with contextlib.suppress(OSError):
                processes.append(parse_process_stat((folder / "stat").read_text(encoding="ascii")))
    return processes


# What a server spent --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ServerUsage:
    """Totals since a server started; differences of two readings give what a round spent."""

    cpu_seconds: float
    commits: int
    wal_syncs: int

    def __sub__(self, earlier: ServerUsage) -> ServerUsage:
        return ServerUsage(
            self.cpu_seconds - earlier.cpu_seconds, self.commits - earlier.commits, self.wal_syncs - earlier.wal_syncs
        )


async def server_usage(server: EmbeddedPostgres) -> ServerUsage:
    assert server.pid is not None
    connection = await asyncpg.connect(server.dsn())
    try:
        commits = await connection.fetchval("SELECT sum(xact_commit)::bigint FROM pg_stat_database")
        wal_syncs = await connection.fetchval("SELECT wal_sync FROM pg_stat_wal")
    finally:
        await connection.close()
    ticks = server_cpu_ticks(read_process_times(), server.pid)
    return ServerUsage(ticks / CLOCK_TICKS_PER_SECOND, int(commits), int(wal_syncs))


# One worker process ---------------------------------------------------------------------------------------


async def worker(plan: dict[str, Any]) -> dict[str, float]:
    """PLAN: ``{"seconds": s, "streams": [{"dsn": ..., "name": ...}, ...]}``. Creates its streams and joins
    one group per stream, prints ``ready`` once every member owns its partition, waits for ``go`` on stdin,
    appends for ``seconds`` (one producer per stream) and returns what it appended and consumed meanwhile."""
    streams: list[dict[str, str]] = plan["streams"]
    by_database: dict[str, list[str]] = {}
    for stream in streams:
        by_database.setdefault(stream["dsn"], []).append(stream["name"])
    stores = {
        dsn: await sluice.connect(
            dsn,
            pool_min_size=CONNECTIONS_PER_STREAM * len(names) + 1,
            pool_max_size=CONNECTIONS_PER_STREAM * len(names) + 1,
            poll_interval=timedelta(milliseconds=50),
        )
        for dsn, names in by_database.items()
    }
    consumed = 0

    async def consume(consumption: GroupBatchConsumption) -> None:
        nonlocal consumed
        async with consumption:
            async for batch in consumption:
                for event in batch.events:
                    consumed += event.data is not None

    try:
        consumptions, consumers = [], []
        for stream in streams:
            store = stores[stream["dsn"]]
            await store.create_stream(StreamConfig(name=stream["name"], partitions=1))
            consumption = store.consumer_groups().consume_batches(
                stream["name"], group_id=f"{stream['name']}-readers", consumer_id="member", options=OPTIONS
            )
            consumptions.append(consumption)
            consumers.append(asyncio.create_task(consume(consumption)))
        async with asyncio.timeout(60):
            while any(len(consumption.partitions) != 1 for consumption in consumptions):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        print("ready", flush=True)
        assert (await asyncio.to_thread(sys.stdin.readline)).strip() == "go"
        appended = 0
        deadline = time.perf_counter() + float(plan["seconds"])

        async def produce(stream: dict[str, str]) -> None:
            nonlocal appended
            numbers = itertools.count(0, BATCH)
            while time.perf_counter() < deadline:
                await stores[stream["dsn"]].append(stream["name"], events(BATCH, next(numbers)))
                appended += BATCH

        cpu_started, started, consumed_at_start = time.process_time(), time.perf_counter(), consumed
        await asyncio.gather(*(produce(stream) for stream in streams))
        seconds = time.perf_counter() - started
        result = {
            "appended": appended,
            "consumed": consumed - consumed_at_start,
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu_started,
        }
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        return result
    finally:
        for store in stores.values():
            await store.close()


# The suite --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RoundResult:
    """One round of one layout: aggregate rates, the workers' CPU and what each server spent."""

    append_rate: float
    consume_rate: float
    seconds: float
    client_cpu_seconds: float
    servers: tuple[ServerUsage, ...]


async def start_worker(plan: dict[str, Any]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.scaling",
        json.dumps(plan),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPOSITORY,
    )


async def run_round(servers: Sequence[EmbeddedPostgres], used: int, seconds: float, label: str) -> RoundResult:
    """STREAMS streams placed over the first ``used`` servers, driven by WORKERS processes for ``seconds``."""
    dsns = [await Databases(server.dsn()).fresh() for server in servers[:used]]
    placement = place_streams(STREAMS, used)
    plans = [
        {
            "seconds": seconds,
            "streams": [{"dsn": dsns[placement[stream]], "name": f"{label}-s{stream}"} for stream in share],
        }
        for share in worker_shares(STREAMS, WORKERS)
    ]
    processes = [await start_worker(plan) for plan in plans]
    try:
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
            assert line.strip() == b"ready", f"worker said {line!r}"
        before = [await server_usage(server) for server in servers]
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        results = []
        for process in processes:
            assert process.stdout is not None
            results.append(json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=seconds + 120)))
        for process in processes:
            assert await process.wait() == 0, "a worker failed"
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    await asyncio.sleep(0.5)  # the workers' backends exit and are reaped; their statistics are flushed
    after = [await server_usage(server) for server in servers]
    return RoundResult(
        append_rate=sum(result["appended"] / result["seconds"] for result in results),
        consume_rate=sum(result["consumed"] / result["seconds"] for result in results),
        seconds=max(result["seconds"] for result in results),
        client_cpu_seconds=sum(result["cpu_seconds"] for result in results),
        servers=tuple(end - start for start, end in zip(before, after, strict=True)),
    )


def describe_rounds(title: str, rounds: Sequence[RoundResult]) -> str:
    """Medians over rounds: rates, the workers' CPU and each server's CPU, commits and WAL syncs per second."""

    def median(values: Iterable[float]) -> float:
        return statistics.median(list(values))

    lines = [
        f"{title}: append {median(r.append_rate for r in rounds):,.0f} events/s "
        f"(runs {[round(r.append_rate) for r in rounds]}), consume {median(r.consume_rate for r in rounds):,.0f} "
        f"events/s (runs {[round(r.consume_rate) for r in rounds]}); worker processes "
        f"{median(r.client_cpu_seconds / r.seconds for r in rounds):.0%} of a core"
    ]
    for index in range(len(rounds[0].servers)):
        cpu = median(r.servers[index].cpu_seconds / r.seconds for r in rounds)
        commits = median(r.servers[index].commits / r.seconds for r in rounds)
        syncs = median(r.servers[index].wal_syncs / r.seconds for r in rounds)
        lines.append(
            f"  server {'AB'[index]}: CPU {cpu:.0%} of a core, {commits:,.0f} commits/s, {syncs:,.0f} WAL syncs/s"
        )
    return "\n".join(lines)


def paired_ratios(one_server: Sequence[float], two_servers: Sequence[float]) -> list[float]:
    """(b)/(a) of each round's pair of runs, measured one after the other: less exposed to drift in the machine
    (other work, the disk) than the ratio of the medians."""
    return [split / single for single, split in zip(one_server, two_servers, strict=True)]


def describe_paired_ratios(one_server: Sequence[RoundResult], two_servers: Sequence[RoundResult]) -> str:
    lines = []
    for what in ("append_rate", "consume_rate"):
        ratios = paired_ratios([getattr(r, what) for r in one_server], [getattr(r, what) for r in two_servers])
        lines.append(
            f"{what.removesuffix('_rate')} (b)/(a) per round: {[round(ratio, 2) for ratio in ratios]}, "
            f"median {statistics.median(ratios):.2f}"
        )
    return "; ".join(lines)


async def run(databases: Databases) -> list[Comparison]:
    """(``databases``, the shared server, is left idle: the suite compares two servers of its own.)"""
    del databases
    cores = len(os.sched_getaffinity(0))
    print(
        f"scaling: {STREAMS} streams (1 partition each), one producer (batches of {BATCH}) and one consumer group "
        f"(1 member, batches of {OPTIONS.batch_size}) per stream, {WORKERS} worker processes, {SECONDS_PER_RUN:g} s "
        f"per run, {REPETITIONS} alternating rounds; both servers durable, on this machine's {cores} core(s) and "
        "one disk: the ratio is the overhead or headroom of splitting here, not what two machines would give; "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    settings = ServerSettings(durable=True)
    with EmbeddedPostgres(settings) as first, EmbeddedPostgres(settings) as second:
        servers = (first, second)
        rounds: dict[int, list[RoundResult]] = {1: [], 2: []}
        labels = itertools.count()
        for used in (1, 2):  # warm-up: page cache, first-run costs
            await run_round(servers, used, WARM_UP_SECONDS, f"r{next(labels)}")
        for _ in range(REPETITIONS):
            for used in (1, 2):
                rounds[used].append(await run_round(servers, used, SECONDS_PER_RUN, f"r{next(labels)}"))
    print(describe_rounds("(a) all streams on server A", rounds[1]))
    print(describe_rounds("(b) half the streams on each server", rounds[2]))
    print(describe_paired_ratios(rounds[1], rounds[2]))
    append = {used: statistics.median(r.append_rate for r in rounds[used]) for used in (1, 2)}
    consume = {used: statistics.median(r.consume_rate for r in rounds[used]) for used in (1, 2)}
    return [
        Comparison(f"append, {STREAMS} streams, 1 server", append[1], None, "events/s"),
        Comparison(f"append, {STREAMS} streams, 2 servers vs 1", append[2], append[1], "events/s", "(not judged)"),
        Comparison(f"consume, {STREAMS} streams, 1 server", consume[1], None, "events/s"),
        Comparison(f"consume, {STREAMS} streams, 2 servers vs 1", consume[2], consume[1], "events/s", "(not judged)"),
    ]


if __name__ == "__main__":
    print(json.dumps(asyncio.run(worker(json.loads(sys.argv[1])))), flush=True)
