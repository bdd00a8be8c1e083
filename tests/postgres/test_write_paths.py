"""The lean write statements of issue 18 on a real PostgreSQL: the two-statement append (migration 0013)
keeps each partition's transaction ids in offset order under concurrent writers, the enqueue statement
stores batches with and without dedupe keys in the batch's order, deduplicating only keyed messages, and
both store every column's values whether a column went once (all its values equal) or whole
(storage/postgres/batch_columns.py)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

import sluice
from sluice import EventData, EventStore, ExpectedOffset, StreamConfig, StreamType
from sluice.core.prepared_batches import PreparedBatch
from sluice.storage.postgres.queries import query
from sluice.store.port import AppendRequest

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
        delivered: list[int] = []
        while batch := await store.dequeue_many("jobs", max_messages=100):
            delivered.extend(message.data["n"] for message in batch)
            await store.acknowledge_many("jobs", [message.receipt for message in batch])
        assert delivered == [*range(50), 50, 51, 53]


COLUMNS = ("event_types", "schema_versions", "content_types", "metadata", "correlation_ids")
"""The columns a batch sends once when their values are all equal."""
DIFFERENT_VALUES: dict[str, list[Any]] = {
    "event_types": ["Placed", "Paid", "Placed"],
    "schema_versions": [1, 2, 1],
    "content_types": ["application/json", "application/json", "text/plain"],
    "metadata": ['{"a": 1}', "{}", "{}"],
    "correlation_ids": ["request-1", None, "request-2"],
}
"""Per column, three values that are not all equal (the last two of one column equal)."""
SAME_VALUES: dict[str, Any] = {
    "event_types": "Placed",
    "schema_versions": 3,
    "content_types": "application/json",
    "metadata": '{"tenant": "t"}',
    "correlation_ids": None,
}


def batch_varying(column: str | None) -> PreparedBatch:
    """Three events whose columns each hold one value throughout, except ``column`` (None: every one)."""
    batch = PreparedBatch(event_ids=[uuid.uuid4() for _ in range(3)], payloads=[b'{"n": 0}', b'{"n": 1}', b"two"])
    for name in COLUMNS:
        values = DIFFERENT_VALUES[name] if name == column else [SAME_VALUES[name]] * 3
        setattr(batch, name, list(values))
    return batch


def stored_columns(rows: list[asyncpg.Record]) -> dict[str, list[Any]]:
    return {
        "event_types": [row["event_type"] for row in rows],
        "schema_versions": [row["schema_version"] for row in rows],
        "content_types": [row["content_type"] for row in rows],
        "metadata": [row["metadata"] for row in rows],
        "correlation_ids": [row["correlation_id"] for row in rows],
    }


def expected_columns(batch: PreparedBatch) -> dict[str, list[Any]]:
    return {name: getattr(batch, name) for name in COLUMNS}


@pytest.mark.parametrize("column", [None, *COLUMNS], ids=["all-equal", *COLUMNS])
async def test_append_and_enqueue_store_each_column_whether_it_went_once_or_whole(
    postgres_dsn: str, column: str | None
) -> None:
    batch = batch_varying(column)
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="orders"))
        await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
        request = AppendRequest(
            stream_name="orders",
            events=batch,
            expected_offset=ExpectedOffset.ANY,
            correlation_id=None,
            partition_key=None,
            partition=None,
        )
        result = await store.backend.log.append(request)
        assert result.offsets == (0, 1, 2)
        await store.backend.queues.enqueue("jobs", batch, [None, "k", None], timedelta(0), None)
    connection = await asyncpg.connect(postgres_dsn)
    try:
        events = await connection.fetch(
            "SELECT event_id, event_type, schema_version, content_type, data, metadata::text, correlation_id"
            " FROM sluice.events ORDER BY event_offset"
        )
        messages = await connection.fetch(
            "SELECT event_type, schema_version, content_type, data, metadata::text, dedupe_key,"
            " NULL AS correlation_id FROM sluice.queue_messages ORDER BY message_id"
        )
    finally:
        await connection.close()
    assert [row["event_id"] for row in events] == batch.event_ids
    assert [row["data"] for row in events] == batch.payloads
    assert stored_columns(events) == expected_columns(batch)
    assert [row["data"] for row in messages] == batch.payloads
    assert [row["dedupe_key"] for row in messages] == [None, "k", None]
    queued = stored_columns(messages)
    queued.pop("correlation_ids")  # queues keep the call's correlation id, not each event's
    assert queued == {name: values for name, values in expected_columns(batch).items() if name != "correlation_ids"}


async def test_append_events_takes_every_column_whole_as_earlier_versions_send_it(postgres_dsn: str) -> None:
    """A process of an earlier version sends every column whole; the statement uses such columns as they are
    (a column of two equal values included)."""
    batch = batch_varying("event_types")
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="orders"))
    connection = await asyncpg.connect(postgres_dsn, server_settings={"search_path": "sluice"})
    try:
        first_offset = await connection.fetchval(
            query("append_events"),
            "orders",
            0,
            None,
            False,
            *batch.columns(),
        )
        rows = await connection.fetch(
            "SELECT event_type, schema_version, content_type, metadata::text, correlation_id FROM events"
            " ORDER BY event_offset"
        )
    finally:
        await connection.close()
    assert first_offset == 0
    assert stored_columns(rows) == expected_columns(batch)
