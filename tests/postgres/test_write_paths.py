"""The lean write statements of issue 18 on a real PostgreSQL: the two-statement append (migration 0013)
keeps each partition's transaction ids in offset order under concurrent writers, and the enqueue statement
stores batches with and without dedupe keys in the batch's order, deduplicating only keyed messages."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest

import sluice
from sluice import EventData, EventStore, StreamConfig, StreamType

WRITERS = 8
APPENDS_PER_WRITER = 60


@pytest.fixture
async def stores(postgres_dsn: str) -> AsyncIterator[list[EventStore]]:
    """One store (so separate connections) per writer."""
    opened = [await sluice.connect(postgres_dsn, pool_min_size=1, pool_max_size=1) for _ in range(WRITERS)]
    yield opened
    for store in opened:
        await store.close()


async def test_concurrent_appends_to_one_partition_are_dense_and_commit_in_offset_order(
    stores: list[EventStore], postgres_dsn: str
) -> None:
    """Writers of one partition take its advisory lock before their transaction has an id, so the global
    log's order (transaction id, sequence) agrees with the offsets; the counter keeps them dense."""
    await stores[0].create_stream(StreamConfig(name="orders", partitions=2))

    async def writer(index: int) -> int:
        generator = random.Random(index)
        written = 0
        for _ in range(APPENDS_PER_WRITER):
            size = generator.randint(1, 3)
            batch = [EventData("E", {"writer": index, "n": n}) for n in range(size)]
            await stores[index].append("orders", batch, partition=0)
            written += size
        return written

    written = sum(await asyncio.gather(*(writer(index) for index in range(WRITERS))))
    connection = await asyncpg.connect(postgres_dsn)
    try:
        rows = await connection.fetch(
            "SELECT event_offset, transaction_id::text::bigint AS transaction_id, sequence FROM sluice.events"
            " WHERE partition = 0 ORDER BY event_offset"
        )
        head = await connection.fetchval("SELECT next_offset FROM sluice.stream_partitions WHERE partition = 0")
    finally:
        await connection.close()
    assert [row["event_offset"] for row in rows] == list(range(written))
    assert head == written
    global_order = [(row["transaction_id"], row["sequence"]) for row in rows]
    assert global_order == sorted(global_order), "a later offset committed under an older transaction id"
    read_back = [event async for event in stores[0].read_all()]
    assert [event.offset for event in read_back] == list(range(written))


async def test_enqueue_without_keys_stores_the_batch_in_order_and_keyed_batches_still_deduplicate(
    postgres_dsn: str,
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
        plain = await store.enqueue_many("jobs", [EventData("Job", {"n": n}) for n in range(50)])
        ids = [result.message_id for result in plain]
        assert ids == sorted(ids)
        assert len(set(ids)) == 50
        assert not any(result.deduplicated for result in plain)
        keyed = await store.enqueue_many(
            "jobs",
            [EventData("Job", {"n": n}) for n in range(50, 54)],
            dedupe_keys=["a", None, "a", "b"],
        )
        assert [result.deduplicated for result in keyed] == [False, False, True, False]
        assert keyed[2].message_id == keyed[0].message_id
        assert [keyed[0].message_id, keyed[1].message_id, keyed[3].message_id] == sorted(
            [keyed[0].message_id, keyed[1].message_id, keyed[3].message_id]
        )
        again = await store.enqueue_many("jobs", [EventData("Job", {"n": 99})], dedupe_keys=["b"])
        assert again[0].deduplicated
        assert again[0].message_id == keyed[3].message_id
        delivered = []
        while batch := await store.dequeue_many("jobs", max_messages=100):
            delivered.extend(message.data["n"] for message in batch)
            await store.acknowledge_many("jobs", [message.receipt for message in batch])
        assert delivered == [*range(50), 50, 51, 53]
