"""Consumer groups: consume throughput against raw paged reads plus one commit per batch, time to
rebalance after a clean leave, and the lag query with 1,000 groups present (issue: consumer groups)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pydantic_core

import sluice
from bench.harness import Comparison, Databases, percentile
from bench.runtime_core import RAW_READ_PAGE, events, stream_id
from sluice import ConsumerGroupOptions, EventStore, OffsetCommitStrategy, StreamConfig
from sluice.store.contracts.consumer_groups import GroupBatchConsumption

REPOSITORY = Path(__file__).parents[1]
PARTITIONS = 8
PER_PARTITION = 5000
BATCH = 100
OPTIONS = ConsumerGroupOptions(
    commit_strategy=OffsetCommitStrategy.AFTER_BATCH,
    batch_size=BATCH,
    session_timeout=timedelta(seconds=3),
    heartbeat_interval=timedelta(seconds=1),
)
LAG_POLL_SECONDS = 0.005
"""How often the multi-process run asks for the group's lag to see it finish (each ask is a query)."""
RAW_READ_PARTITION_PAGE = RAW_READ_PAGE.replace("partition = 0", "partition = $4")
RAW_COMMIT = """
UPDATE sluice.consumer_group_partitions SET committed_offset = $3, committed_at = clock_timestamp()
 WHERE group_key = $1 AND partition = $2"""


async def fill(store: EventStore, name: str) -> None:
    await store.create_stream(StreamConfig(name=name, partitions=PARTITIONS))
    for partition in range(PARTITIONS):
        for start in range(0, PER_PARTITION, 500):
            await store.append(name, events(500, start), partition=partition)


async def consume_all(store: EventStore, stream: str, group: str, members: int, *, batches: bool) -> float:
    """Events per second for ``members`` members of a new group draining the stream, measured from
    the moment the group has settled (every member owns its share) to the last event. Each event's
    payload is decoded (``event.data``), as the raw baseline does; ``batches`` uses
    ``consume_batches`` instead of the per-event iterator."""
    reader = store.consumer_groups()
    total = PARTITIONS * PER_PARTITION
    done = 0
    finished = asyncio.Event()

    async def member_events(consumption: sluice.GroupConsumption) -> None:
        nonlocal done
        async with consumption:
            async for event in consumption:
                done += event.data is not None
                if done >= total:  # shared by the members: each stops at its next event
                    finished.set()
                    break

    async def member_batches(consumption: GroupBatchConsumption) -> None:
        nonlocal done
        async with consumption:
            async for batch in consumption:
                for event in batch.events:
                    done += event.data is not None
                if done >= total:
                    finished.set()
                    break

    consumptions: list[sluice.GroupConsumption | GroupBatchConsumption] = []
    tasks = []
    for index in range(members):
        if batches:
            batch_consumption = reader.consume_batches(stream, group_id=group, consumer_id=f"m{index}", options=OPTIONS)
            consumptions.append(batch_consumption)
            tasks.append(asyncio.create_task(member_batches(batch_consumption)))
        else:
            consumption = reader.consume(stream, group_id=group, consumer_id=f"m{index}", options=OPTIONS)
            consumptions.append(consumption)
            tasks.append(asyncio.create_task(member_events(consumption)))
    share = PARTITIONS // members
    async with asyncio.timeout(60):
        while any(len(consumption.partitions) != share for consumption in consumptions):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    started, done_at_start = time.perf_counter(), done
    await asyncio.wait_for(finished.wait(), timeout=300)
    elapsed = time.perf_counter() - started
    for task in tasks:  # the others wait for events that will not come: stop them (they leave)
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return (total - done_at_start) / elapsed


async def raw_consume_partitions(
    connection: asyncpg.Connection, stream_key: int, group_key: int, partitions: list[int]
) -> int:
    """Plain asyncpg doing one member's work: page through ``partitions`` in pages of 100, decode each
    payload (as the Sluice consumer does by reading ``event.data``; the read_stream benchmark's baseline
    decodes too) and commit each page with one UPDATE. Returns the events read."""
    count = 0
    for partition in partitions:
        offset = 0
        while True:
            page = await connection.fetch(RAW_READ_PARTITION_PAGE, stream_key, offset, BATCH, partition)
            for record in page:
                count += pydantic_core.from_json(record["data"]) is not None
            if not page:
                break
            offset = page[-1]["event_offset"] + 1
            await connection.execute(RAW_COMMIT, group_key, partition, offset)
    return count


def partition_shares(members: int) -> list[list[int]]:
    return [list(range(index, PARTITIONS, members)) for index in range(members)]


async def raw_consume_all(dsn: str, stream: str, group_key: int, members: int) -> float:
    """``members`` raw workers in this process, one connection each."""
    connections = [await asyncpg.connect(dsn) for _ in range(members)]
    stream_key = await stream_id(connections[0], stream)
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(
            raw_consume_partitions(connection, stream_key, group_key, share)
            for connection, share in zip(connections, partition_shares(members), strict=True)
        )
    )
    elapsed = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    assert sum(counts) == PARTITIONS * PER_PARTITION
    return sum(counts) / elapsed


async def raw_consume_with_processes(dsn: str, stream: str, group_key: int, members: int) -> float:
    """``members`` raw worker processes, as the Sluice side runs them: each connects, says it is ready,
    waits for a go on stdin, does its share and prints its count; the clock runs from go to the last."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.raw_member_process",
            dsn,
            stream,
            str(group_key),
            ",".join(str(partition) for partition in share),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPOSITORY,
        )
        for share in partition_shares(members)
    ]
    for process in processes:
        assert process.stdout is not None
        assert (await process.stdout.readline()).strip() == b"ready"
    started = time.perf_counter()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    counts = []
    for process in processes:
        assert process.stdout is not None
        counts.append(int(await process.stdout.readline()))
    elapsed = time.perf_counter() - started
    for process in processes:
        await process.wait()
    assert sum(counts) == PARTITIONS * PER_PARTITION
    return sum(counts) / elapsed


async def compare_both_apis(
    events: Callable[[], Awaitable[float]],
    batches: Callable[[], Awaitable[float]],
    baseline: Callable[[], Awaitable[float]],
    repetitions: int = 5,
) -> tuple[float, float, float]:
    """Medians of the per-event API's, the batch API's and the baseline's rates, measured in turn
    (events, batches, baseline, events, ...) so that drift in the machine hits all three alike."""
    rates: tuple[list[float], list[float], list[float]] = ([], [], [])
    for _ in range(repetitions):
        for run, collected in zip((events, batches, baseline), rates, strict=True):
            collected.append(await run())
    events_rate, batches_rate, baseline_rate = (statistics.median(collected) for collected in rates)
    return events_rate, batches_rate, baseline_rate


def throughput_rows(scenario: str, events: float, batches: float, raw: float) -> list[Comparison]:
    """Both APIs against one raw baseline; the 0.7x target is judged on the batch API."""
    return [
        Comparison(f"consume events, {scenario}", events, raw, "events/s", "(not judged)"),
        Comparison(f"consume batches, {scenario}", batches, raw, "events/s", ">= 0.7x raw", batches / raw >= 0.7),
    ]


async def bench_throughput(databases: Databases, rows: list[Comparison]) -> None:
    print(
        "consume throughput: 8 partitions, batch 100, AFTER_BATCH, each payload decoded; per-event iterator "
        "(consume) and batch API (consume_batches) against the same raw baseline; the >= 0.7x target is "
        "judged on the batch API"
    )
    dsn = await databases.fresh()
    store = await sluice.connect(dsn, pool_min_size=10, pool_max_size=10)  # two per member, and heartbeats
    await fill(store, "orders")
    admin = await asyncpg.connect(dsn)
    await admin.execute("ANALYZE")
    # The raw side commits into a real group's partition rows, like Sluice does.
    reader = store.consumer_groups()
    # (A consumption joins when it is first iterated, so take one event to create the group.)
    async with reader.consume("orders", group_id="raw", consumer_id="setup", options=OPTIONS) as setup:
        async for _event in setup:
            break
    group_key = await admin.fetchval("SELECT group_key FROM sluice.consumer_groups WHERE name = 'raw'")
    partition_rows = await admin.fetchval(
        "SELECT count(*) FROM sluice.consumer_group_partitions WHERE group_key = $1", group_key
    )
    assert partition_rows == PARTITIONS, "the raw baseline must commit into real partition rows"
    rounds = itertools.count()

    def sluice_run(members: int, *, batches: bool, processes: bool = False) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            group = f"g{next(rounds)}"
            if processes:
                return await consume_with_processes(store, dsn, group, members, batches=batches)
            return await consume_all(store, "orders", group, members, batches=batches)

        return run

    def raw_run(members: int, *, processes: bool = False) -> Callable[[], Awaitable[float]]:
        if processes:
            return lambda: raw_consume_with_processes(dsn, "orders", group_key, members)
        return lambda: raw_consume_all(dsn, "orders", group_key, members)

    for members, processes, scenario in (
        (1, False, "1 member"),
        (4, False, "4 members, 1 process"),
        (4, True, "4 member processes"),
    ):
        rates = await compare_both_apis(
            sluice_run(members, batches=False, processes=processes),
            sluice_run(members, batches=True, processes=processes),
            raw_run(members, processes=processes),
        )
        rows.extend(throughput_rows(scenario, *rates))
    await admin.close()
    await store.close()


async def consume_with_processes(store: EventStore, dsn: str, group: str, members: int, *, batches: bool) -> float:
    """Events per second for ``members`` member processes (as pods would run them): they join at the
    head and settle, a forced reset to the earliest offsets starts them all, and the clock runs from the
    first event any of them delivers until the group's lag is zero (everything processed and committed).
    Members notice the reset at their next heartbeat; that wait is not consume throughput, so it is left
    out, as the raw processes' clock starts at their go."""
    reader = store.consumer_groups()
    with tempfile.TemporaryDirectory() as directory:
        first_event_files = [Path(directory) / f"p{index}" for index in range(members)]
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.group_member_process",
                dsn,
                "orders",
                group,
                f"p{index}",
                "batches" if batches else "events",
                str(first_event_files[index]),
                cwd=REPOSITORY,
            )
            for index in range(members)
        ]
        try:
            async with asyncio.timeout(60):
                while True:
                    with contextlib.suppress(sluice.GroupNotFoundError):
                        described = await reader.describe("orders", group)
                        shares = sorted(len(member.partitions) for member in described.active_members)
                        if shares == [PARTITIONS // members] * members and all(p.owner for p in described.partitions):
                            break
                    await asyncio.sleep(0.05)
            await reader.reset_offsets("orders", group, to=sluice.StartPosition(), force=True)
            async with asyncio.timeout(300):
                while (await reader.lag("orders", group)).lag_events:  # noqa: ASYNC110 (polls the database)
                    await asyncio.sleep(LAG_POLL_SECONDS)
            finished = time.time()
            started = min(float(path.read_text(encoding="utf-8")) for path in first_event_files if path.exists())
            return PARTITIONS * PER_PARTITION / (finished - started)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                await process.wait()


async def bench_rebalance(databases: Databases, rows: list[Comparison]) -> None:
    """Two members own 4 partitions each; one leaves cleanly; time until the other owns all 8."""
    dsn = await databases.fresh()
    store = await sluice.connect(dsn)
    await store.create_stream(StreamConfig(name="orders", partitions=PARTITIONS))
    reader = store.consumer_groups()
    timings = []
    for attempt in range(5):
        group = f"rebalance-{attempt}"
        stay = reader.consume("orders", group_id=group, consumer_id="stay", options=OPTIONS)
        leave = reader.consume("orders", group_id=group, consumer_id="leave", options=OPTIONS)
        tasks = [asyncio.create_task(_drain(stay)), asyncio.create_task(_drain(leave))]
        async with asyncio.timeout(30):
            while len(stay.partitions) != 4 or len(leave.partitions) != 4:  # noqa: ASYNC110 (polls another task's state)
                await asyncio.sleep(0.01)
        started = time.perf_counter()
        tasks[1].cancel()  # stops the consuming task: it leaves the group cleanly
        async with asyncio.timeout(30):
            while len(stay.partitions) != PARTITIONS:  # noqa: ASYNC110 (polls another task's state)
                await asyncio.sleep(0.001)
        timings.append(time.perf_counter() - started)
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    median = statistics.median(timings) * 1000
    rows.append(
        Comparison("rebalance after a clean leave (median of 5)", median, None, "ms", "<= 1000 ms", median <= 1000)
    )
    await store.close()


async def _drain(consumption: sluice.GroupConsumption) -> None:
    async for _ in consumption:
        pass


async def bench_lag_query(databases: Databases, rows: list[Comparison]) -> None:
    """Lag of one group (8 partitions) with 1,000 groups on 100 streams in the database."""
    dsn = await databases.fresh()
    store = await sluice.connect(dsn)
    connection = await asyncpg.connect(dsn)
    for n in range(100):
        await store.create_stream(StreamConfig(name=f"s{n}", partitions=PARTITIONS))
        await store.append(f"s{n}", events(20))
    await connection.execute(
        """
        INSERT INTO sluice.consumer_groups (stream_id, name)
        SELECT s.stream_id, 'group-' || g FROM sluice.streams s, generate_series(1, 10) AS g;
        INSERT INTO sluice.consumer_group_partitions (group_key, partition, committed_offset, claimed_offset)
        SELECT g.group_key, p, 0, 0 FROM sluice.consumer_groups g, generate_series(0, 7) AS p;
        ANALYZE;
        """
    )
    assert await connection.fetchval("SELECT count(*) FROM sluice.consumer_groups") == 1000
    reader = store.consumer_groups()
    timings = []
    for attempt in range(200):
        started = time.perf_counter()
        described = await reader.lag(f"s{attempt % 100}", "group-5")
        timings.append((time.perf_counter() - started) * 1000)
        assert described.lag_events == 20
    p50 = percentile(timings, 0.5)
    rows.append(Comparison("lag of one group, 1,000 groups present (p50)", p50, None, "ms", "<= 5 ms", p50 <= 5))
    rows.append(Comparison("lag of one group, 1,000 groups present (p99)", percentile(timings, 0.99), None, "ms"))
    await connection.close()
    await store.close()


async def run(databases: Databases) -> list[Comparison]:
    rows: list[Comparison] = []
    await bench_throughput(databases, rows)
    await bench_rebalance(databases, rows)
    await bench_lag_query(databases, rows)
    return rows
