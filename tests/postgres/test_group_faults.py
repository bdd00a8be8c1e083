"""Consumer groups under real process faults: SIGTERM (clean leave), SIGKILL mid-batch (crash) and
SIGSTOP past the session timeout (a paused member that comes back), against a real PostgreSQL.
Workers are separate OS processes (tests/postgres/group_worker.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

import sluice
from sluice import DeliverySemantics, EventData, EventStore, GroupDescription, StreamConfig

SESSION_TIMEOUT = 2.0  # the workers' (tests/postgres/group_worker.py)
REPOSITORY = Path(__file__).parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    connection = await asyncpg.connect(postgres_dsn)
    await connection.execute(
        "CREATE TABLE public.processed (consumer_id text, partition int, event_offset bigint,"
        " at timestamptz DEFAULT clock_timestamp());"
        "CREATE TABLE public.worker_stats (consumer_id text, delivered int, commits int, fenced int)"
    )
    await connection.close()
    async with await sluice.connect(postgres_dsn) as opened:
        yield opened


@pytest.fixture
def workers(postgres_dsn: str) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    started: dict[str, subprocess.Popen[bytes]] = {}
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def start_worker(
    started: dict[str, subprocess.Popen[bytes]],
    dsn: str,
    consumer_id: str,
    *,
    delay: float = 0.01,
    manual: bool = False,
    session_timeout: float | None = None,
) -> None:
    started[consumer_id] = subprocess.Popen(
        [sys.executable, "-m", "tests.postgres.group_worker", dsn, "orders", "g", consumer_id, "--delay", str(delay)]
        + (["--manual"] if manual else [])
        + ([] if session_timeout is None else ["--session-timeout", str(session_timeout)]),
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )


async def wait_for_assignment(store: EventStore, expected: dict[str, int], seconds: float) -> GroupDescription:
    """Until the active members own exactly ``expected`` partition counts (with no handoff pending)."""
    reader = store.consumer_groups()
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            description = await reader.describe("orders", "g")
            owned = {member.consumer_id: len(member.partitions) for member in description.members}
            if owned == expected and all(p.owner is not None for p in description.partitions):
                return description
        except sluice.GroupNotFoundError:
            owned = {}
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"assignment {owned} did not become {expected} within {seconds} s")
        await asyncio.sleep(0.05)


async def processed_counts(dsn: str) -> Counter[tuple[int, int]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT partition, event_offset FROM public.processed")
    finally:
        await connection.close()
    return Counter((row["partition"], row["event_offset"]) for row in rows)


async def test_sigterm_rebalances_and_sigkill_redelivers_only_uncommitted_events(
    store: EventStore, postgres_dsn: str, workers: dict[str, subprocess.Popen[bytes]]
) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=8))
    per_partition = 150
    for partition in range(8):
        await store.append("orders", [EventData("E", {"n": n}) for n in range(per_partition)], partition=partition)
    for name in ("w1", "w2", "w3", "w4"):
        start_worker(workers, postgres_dsn, name, delay=0.02)
    await wait_for_assignment(store, {"w1": 2, "w2": 2, "w3": 2, "w4": 2}, seconds=15)

    for name in ("w3", "w4"):
        workers[name].send_signal(signal.SIGTERM)
    started = asyncio.get_running_loop().time()
    await wait_for_assignment(store, {"w1": 4, "w2": 4}, seconds=2 * SESSION_TIMEOUT)
    rebalance_seconds = asyncio.get_running_loop().time() - started
    assert workers["w3"].wait(10) == 0
    assert workers["w4"].wait(10) == 0

    await asyncio.sleep(0.3)  # w2 is in the middle of a batch (20 ms per event, 10 per batch)
    workers["w2"].kill()
    workers["w2"].wait()
    killed_at = {
        p.partition: (p.owner, p.committed_offset)
        for p in (await store.consumer_groups().describe("orders", "g")).partitions
    }
    await wait_for_assignment(store, {"w1": 8}, seconds=4 * SESSION_TIMEOUT)

    async def everything_processed() -> bool:
        return len(await processed_counts(postgres_dsn)) == 8 * per_partition

    for _ in range(600):
        if await everything_processed():
            break
        await asyncio.sleep(0.1)
    counts = await processed_counts(postgres_dsn)
    assert len(counts) == 8 * per_partition, "every event processed at least once"
    duplicates = {key for key, count in counts.items() if count > 1}
    for partition, offset in duplicates:
        owner, committed = killed_at[partition]
        assert owner == "w2", f"duplicate {partition}:{offset} in a partition the killed worker did not own"
        assert offset >= committed, f"event {partition}:{offset} was committed before the kill but processed twice"
    assert duplicates, "the SIGKILL landed mid-batch, so some uncommitted events were redelivered"
    assert rebalance_seconds < 2 * SESSION_TIMEOUT


async def test_a_paused_member_cannot_commit_after_its_session_expired(
    store: EventStore, postgres_dsn: str, workers: dict[str, subprocess.Popen[bytes]]
) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    for partition in range(2):
        await store.append("orders", [EventData("E", {"n": n}) for n in range(200)], partition=partition)
    start_worker(workers, postgres_dsn, "paused", delay=0.05, manual=True)  # commits each event itself
    start_worker(workers, postgres_dsn, "steady", delay=0.05)
    description = await wait_for_assignment(store, {"paused": 1, "steady": 1}, seconds=15)
    paused_partition = next(p.partition for p in description.partitions if p.owner == "paused")
    await asyncio.sleep(0.2)  # mid-batch
    workers["paused"].send_signal(signal.SIGSTOP)
    await wait_for_assignment(store, {"steady": 2}, seconds=3 * SESSION_TIMEOUT)
    taken_over = {
        p.partition: p.committed_offset for p in (await store.consumer_groups().describe("orders", "g")).partitions
    }
    await asyncio.sleep(1.5)  # the new owner works on the taken-over partition meanwhile
    workers["paused"].send_signal(signal.SIGCONT)
    await asyncio.sleep(1.5)  # it finishes its batch, tries to commit, is fenced, and rejoins
    for name in ("paused", "steady"):
        workers[name].send_signal(signal.SIGTERM)
        assert workers[name].wait(15) == 0
    connection = await asyncpg.connect(postgres_dsn)
    try:
        stats = {row["consumer_id"]: row for row in await connection.fetch("SELECT * FROM public.worker_stats")}
        steady_took = await connection.fetchval(
            "SELECT count(*) FROM public.processed"
            " WHERE consumer_id = 'steady' AND partition = $1 AND event_offset >= $2",
            paused_partition,
            taken_over[paused_partition],
        )
    finally:
        await connection.close()
    # It held an event when it was stopped; committing it after it resumed was refused (by the
    # database, or by the member itself if its heartbeat told it first).
    assert stats["paused"]["fenced"] >= 1, "the resumed member's commit was refused"
    assert steady_took > 0, "the new owner processed the paused member's events"


async def test_a_quick_restart_with_the_same_consumer_id_keeps_the_assignment(
    store: EventStore, postgres_dsn: str, workers: dict[str, subprocess.Popen[bytes]]
) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=4))
    for partition in range(4):
        await store.append("orders", [EventData("E", {"n": n}) for n in range(300)], partition=partition)
    # The restart must come well within the session: a new Python process can take more than the other
    # tests' 2 s to start on a loaded machine, so these members keep a 15 s session.
    start_worker(workers, postgres_dsn, "a", delay=0.02, session_timeout=15)
    start_worker(workers, postgres_dsn, "b", delay=0.02, session_timeout=15)
    before = await wait_for_assignment(store, {"a": 2, "b": 2}, seconds=15)
    workers["a"].kill()  # a crash ...
    workers["a"].wait()
    start_worker(workers, postgres_dsn, "a", delay=0.02, session_timeout=15)  # ... and a restart within the session

    reader = store.consumer_groups()
    for _ in range(200):
        after = await reader.describe("orders", "g")
        restarted = [p for p in after.partitions if p.owner == "a"]
        if restarted and all(
            p.epoch > next(q.epoch for q in before.partitions if q.partition == p.partition) for p in restarted
        ):
            break
        await asyncio.sleep(0.05)
    owners_before = {p.partition: p.owner for p in before.partitions}
    owners_after = {p.partition: p.owner for p in after.partitions}
    assert owners_after == owners_before, "no partition moved: static membership"
    assert after.generation == before.generation, "no rebalance"
    epochs_before = {p.partition: p.epoch for p in before.partitions}
    for partition in after.partitions:
        if partition.owner == "a":  # the new process got new epochs: the old one, were it alive, is fenced
            assert partition.epoch == epochs_before[partition.partition] + 1
        else:
            assert partition.epoch == epochs_before[partition.partition]


async def test_queue_delivery_redelivers_a_killed_members_claims_and_loses_nothing(
    store: EventStore, postgres_dsn: str, workers: dict[str, subprocess.Popen[bytes]]
) -> None:
    # One partition shared by three members: QUEUE delivery spreads it; a SIGKILL mid-batch leaves
    # claims that another member takes over once the dead member's session (and lease) ran out.
    await store.create_stream(StreamConfig(name="orders", partitions=1, delivery=DeliverySemantics.QUEUE))
    total = 600
    await store.append("orders", [EventData("E", {"n": n}) for n in range(total)])
    for name in ("q1", "q2", "q3"):
        start_worker(workers, postgres_dsn, name, delay=0.01)
    reader = store.consumer_groups()

    async def processed_by(consumer_id: str) -> int:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            return int(
                await connection.fetchval("SELECT count(*) FROM public.processed WHERE consumer_id = $1", consumer_id)
            )
        finally:
            await connection.close()

    for _ in range(300):
        if all([await processed_by(name) > 20 for name in ("q1", "q2", "q3")]):
            break
        await asyncio.sleep(0.05)
    # Kill q2 mid-claim: it commits after each batch of 10 (AFTER_BATCH), at 10 ms per event, so with 1 to 7
    # of a batch's events recorded at least two are still to come before that commit. (Killing at a moment
    # picked by the clock alone sometimes landed between two claims, with nothing left to redeliver.)
    watcher = await asyncpg.connect(postgres_dsn)
    try:
        for _ in range(2000):
            recorded = await watcher.fetchval("SELECT count(*) FROM public.processed WHERE consumer_id = 'q2'")
            if 1 <= recorded % 10 <= 7:
                break
        workers["q2"].kill()
    finally:
        await watcher.close()
    workers["q2"].wait()
    killed_after = await processed_by("q2")
    assert killed_after > 0

    for _ in range(600):
        if len(await processed_counts(postgres_dsn)) == total:
            break
        await asyncio.sleep(0.1)
    counts = await processed_counts(postgres_dsn)
    assert sorted(offset for _, offset in counts) == list(range(total)), "every event processed at least once"
    duplicates = sorted(offset for (_, offset), count in counts.items() if count > 1)
    assert duplicates, "the SIGKILL landed mid-claim, so some unacknowledged events were redelivered"
    assert len(duplicates) <= 2 * 10, f"only the killed member's unacknowledged claims are redelivered: {duplicates}"
    connection = await asyncpg.connect(postgres_dsn)
    try:
        redelivered_from_q2 = await connection.fetchval(
            "SELECT count(*) FROM public.processed p WHERE p.consumer_id = 'q2' AND EXISTS"
            " (SELECT 1 FROM public.processed o WHERE o.event_offset = p.event_offset AND o.consumer_id <> 'q2')"
        )
    finally:
        await connection.close()
    assert redelivered_from_q2 == len(duplicates), "every duplicate was first processed by the killed member"

    async def fully_committed() -> bool:
        described = await reader.describe("orders", "g")
        return described.partitions[0].committed_offset == total

    for _ in range(100):
        if await fully_committed():
            break
        await asyncio.sleep(0.1)
    described = await reader.describe("orders", "g")
    assert described.partitions[0].committed_offset == total
    assert described.lag_events == 0
    assert sorted(member.consumer_id for member in described.active_members) == ["q1", "q3"]
