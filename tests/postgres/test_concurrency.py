"""Correctness under concurrency on a real PostgreSQL (../shared/notes/correctness.md, traps 1 and 4).

Each test would fail without the mechanism it names: the partition counter row (dense offsets
visible in order), the transaction horizon of the global log, receipts conditional on the delivery
attempt, polling behind LISTEN/NOTIFY, and one-statement appends.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

import sluice
from sluice import ConnectionLostError, EventData, EventStore, RecordedEvent
from sluice.storage.postgres.queries import query
from sluice.storage.postgres.store import PostgresEventStore

FAST_POLL = timedelta(milliseconds=100)
TOTAL_EVENTS = 20_000
APPENDERS = 8


@pytest.fixture
async def stores(postgres_dsn: str) -> AsyncIterator[list[EventStore]]:
    """One store (and so separate connections) per appender, plus one for the readers."""
    opened = [
        await sluice.connect(postgres_dsn, poll_interval=FAST_POLL, pool_min_size=1, pool_max_size=2)
        for _ in range(APPENDERS + 1)
    ]
    yield opened
    for store in opened:
        await store.close()


async def append_slowly_in_open_transaction(dsn: str, stream: str, hold_seconds: float) -> list[uuid.UUID]:
    """An appender that reserves offsets, then sleeps inside its transaction before committing:
    later appends to other streams commit first, and readers must still not skip it."""
    connection = await asyncpg.connect(dsn, server_settings={"search_path": "sluice"})
    ids = [uuid.uuid4() for _ in range(5)]
    try:
        async with connection.transaction():
            first_offset = await connection.fetchval(
                query("append_events"),
                stream,
                0,
                None,
                False,
                ids,
                ["Slow"] * 5,
                [1] * 5,
                ["application/json"] * 5,
                [b'{"slow": true}'] * 5,
                ["{}"] * 5,
                None,
            )
            assert first_offset is not None, f"stream {stream} must exist before the slow append"
            await asyncio.sleep(hold_seconds)
    finally:
        await connection.close()
    return ids


async def collect(iterator: AsyncIterator[RecordedEvent], count: int, into: list[RecordedEvent]) -> None:
    async for event in iterator:
        into.append(event)
        if len(into) >= count:
            return


async def run_appenders(stores: list[EventStore], streams: list[str], per_appender: int) -> dict[str, list[uuid.UUID]]:
    """Each appender writes ``per_appender`` events in random batch sizes to its stream(s)."""
    appended: dict[str, list[uuid.UUID]] = defaultdict(list)

    async def appender(index: int) -> None:
        generator = random.Random(index)
        remaining = per_appender
        while remaining:
            size = min(remaining, generator.randint(1, 40))
            stream = streams[index % len(streams)]
            batch = [EventData("E", {"appender": index, "n": n}) for n in range(size)]
            await stores[index].append(stream, batch)
            appended[stream].extend(event.event_id for event in batch)
            remaining -= size

    await asyncio.gather(*(appender(index) for index in range(APPENDERS)))
    return appended


@pytest.mark.parametrize("stream_count", [1, APPENDERS], ids=["one-stream", "eight-streams"])
async def test_concurrent_appenders_and_tailing_readers_see_every_event_once_in_order(
    stores: list[EventStore], postgres_dsn: str, stream_count: int
) -> None:
    reader_store = stores[-1]
    streams = [f"stream-{n}" for n in range(stream_count)]
    for stream in streams:
        await reader_store.create_stream(sluice.StreamConfig(name=stream))
    slow_events = 5
    expected_per_stream = {
        stream: TOTAL_EVENTS // stream_count + (slow_events if stream == streams[0] else 0) for stream in streams
    }
    stream_readers = {stream: [] for stream in streams}  # type: dict[str, list[RecordedEvent]]
    global_reader: list[RecordedEvent] = []
    tasks = [
        asyncio.create_task(
            collect(reader_store.subscribe(stream), expected_per_stream[stream], stream_readers[stream])
        )
        for stream in streams
    ]
    total = TOTAL_EVENTS + slow_events
    tasks.append(asyncio.create_task(collect(reader_store.subscribe_all(), total, global_reader)))

    slow = asyncio.create_task(append_slowly_in_open_transaction(postgres_dsn, streams[0], hold_seconds=1.0))
    await asyncio.sleep(0.2)  # the slow transaction now holds offsets of streams[0]
    appended = await run_appenders(stores[:APPENDERS], streams, TOTAL_EVENTS // APPENDERS)
    appended[streams[0]].extend(await slow)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=90)

    for stream in streams:
        received = stream_readers[stream]
        assert [event.offset for event in received] == list(range(expected_per_stream[stream])), stream
        assert sorted(event.event_id for event in received) == sorted(appended[stream])
    assert len(global_reader) == total
    assert len({event.event_id for event in global_reader}) == total
    positions = [event.global_position for event in global_reader]
    assert positions == sorted(positions)
    for stream in streams:  # the global log keeps each stream's order
        offsets = [event.offset for event in global_reader if event.stream_name == stream]
        assert offsets == list(range(expected_per_stream[stream]))


async def test_the_global_log_waits_for_a_transaction_that_commits_late(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn, poll_interval=FAST_POLL) as store:
        await store.create_stream(sluice.StreamConfig(name="slow"))
        await store.append("fast", EventData("E", {"n": 0}))
        slow = asyncio.create_task(append_slowly_in_open_transaction(postgres_dsn, "slow", hold_seconds=1.0))
        await asyncio.sleep(0.2)
        await store.append("fast", EventData("E", {"n": 1}))  # commits while the slow one is open
        seen_early = [event.stream_name async for event in store.read_all()]
        assert seen_early == ["fast"]  # stops below the open transaction instead of skipping it
        await slow
        everything = [event async for event in store.read_all()]
        assert [event.stream_name for event in everything] == ["fast"] + ["slow"] * 5 + ["fast"]
        resumed = [event async for event in store.read_all(after=everything[0].global_position)]
        assert len(resumed) == 6


async def test_a_lost_notification_connection_delays_but_never_loses_events(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn, poll_interval=timedelta(milliseconds=300)) as reader:
        assert isinstance(reader, PostgresEventStore)
        channel = reader.notifications
        assert channel is not None
        await reader.create_stream(sluice.StreamConfig(name="s"))
        received: list[RecordedEvent] = []
        task = asyncio.create_task(collect(reader.subscribe("s"), 40, received))
        async with await sluice.connect(postgres_dsn) as writer:
            await writer.append("s", [EventData("E", {"n": n}) for n in range(10)])
            admin = await asyncpg.connect(postgres_dsn)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
                assert killed >= 1
                for n in range(10, 40):  # appended while the listener is down or reconnecting
                    await writer.append("s", EventData("E", {"n": n}))
            finally:
                await admin.close()
        await asyncio.wait_for(task, timeout=20)
        assert [event.offset for event in received] == list(range(40))
        for _ in range(100):
            if channel.reconnects:
                break
            await asyncio.sleep(0.05)
        assert channel.reconnects >= 1


async def test_a_connection_dropped_mid_append_stores_all_or_nothing(postgres_dsn: str) -> None:
    admin = await asyncpg.connect(postgres_dsn)
    # A real fault at an exact instant: the 500th inserted row sleeps, so the append is killed
    # while half of its rows are inserted inside its transaction.
    await admin.execute(
        """
        CREATE FUNCTION sluice.pause_mid_batch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;
        CREATE TRIGGER pause_mid_batch AFTER INSERT ON sluice.events FOR EACH ROW
            WHEN (NEW.event_offset = 500) EXECUTE FUNCTION sluice.pause_mid_batch();
        """
    )
    try:
        async with await sluice.connect(postgres_dsn) as store:
            batch = [EventData("E", {"n": n}) for n in range(1000)]
            append = asyncio.create_task(store.append("s", batch))
            for _ in range(200):
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event = 'PgSleep'"
                )
                if killed:
                    break
                await asyncio.sleep(0.05)
            with pytest.raises(ConnectionLostError, match="stored whole or not at all"):
                await append
            assert (await store.get_stream("s")).head == 0
            assert [event async for event in store.read_stream("s")] == []
            await admin.execute("DROP TRIGGER pause_mid_batch ON sluice.events")
            retried = await store.append("s", batch)  # the same event ids: safe to retry
            assert retried.offsets == tuple(range(1000))
            assert not retried.deduplicated
    finally:
        await admin.close()


async def test_competing_consumers_on_separate_connections_never_share_a_message(
    stores: list[EventStore],
) -> None:
    await stores[0].enqueue_many("jobs", [EventData("Job", {"n": n}) for n in range(2000)])
    held: list[int] = []

    async def worker(store: EventStore) -> None:
        while True:
            messages = await store.dequeue_many("jobs", max_messages=10, visibility_timeout=timedelta(minutes=5))
            if not messages:
                return
            held.extend(message.message_id for message in messages)
            assert await store.acknowledge_many("jobs", [message.receipt for message in messages]) == []

    await asyncio.gather(*(worker(store) for store in stores[:APPENDERS]))
    assert len(held) == 2000
    assert len(set(held)) == 2000
