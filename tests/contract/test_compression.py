"""Contract: payloads above a stream's threshold are compressed (zstd or gzip) and every read path
gives the original bytes back, on both backends; on PostgreSQL the stored bytes are smaller, and a
hostile compressed row cannot make a reader decompress past max_payload_bytes."""

from __future__ import annotations

import gzip
from datetime import timedelta

import pydantic_core
import pytest
import zstandard

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig, StreamType
from sluice.core.batches import prepare_batch
from sluice.core.compression import Compression, CompressionPolicy, compress, decompress, plain_payload
from sluice.core.errors import CorruptPayloadError, InvalidArgumentError
from sluice.core.event_types import default_registry
from sluice.core.events import BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE
from sluice.storage.postgres.store import PostgresEventStore
from tests.contract.group_helpers import take

FAST_GROUP = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)
LARGE = {"text": "all work and no play " * 200, "numbers": list(range(100))}
SMALL = {"n": 1}
BINARY = bytes(range(256)) * 40


def compressed_stream(name: str, compression: Compression) -> StreamConfig:
    return StreamConfig(name=name, partitions=2, compression=compression, compression_threshold=256)


def events() -> list[EventData]:
    return [EventData("Large", LARGE), EventData("Small", SMALL), EventData("Binary", BINARY)]


@pytest.mark.parametrize("compression", [Compression.ZSTD, Compression.GZIP])
async def test_compressed_payloads_round_trip_in_every_read_path(store: EventStore, compression: Compression) -> None:
    info = await store.create_stream(compressed_stream("orders", compression))
    assert (info.compression, info.compression_threshold) == (compression, 256)
    assert (await store.get_stream("orders")).config.compression is compression
    await store.append("orders", events(), partition=1)
    expected = [(JSON_CONTENT_TYPE, LARGE), (JSON_CONTENT_TYPE, SMALL), (BINARY_CONTENT_TYPE, BINARY)]

    def seen(found: list[sluice.RecordedEvent]) -> list[tuple[str, object]]:
        return [(event.content_type, event.data) for event in found]

    assert seen([event async for event in store.read_stream("orders", partition=1)]) == expected
    backwards = [
        event async for event in store.read_stream("orders", partition=1, direction=sluice.Direction.BACKWARDS)
    ]
    assert seen(backwards) == expected[::-1]
    subscribed = []
    async for event in store.subscribe("orders", partition=1):
        subscribed.append(event)
        if len(subscribed) == 3:
            break
    assert seen(subscribed) == expected
    assert seen([event async for event in store.read_all()]) == expected
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="g", consumer_id="w", options=FAST_GROUP) as consumption:
        assert seen(list(await take(consumption, 3))) == expected
    async with reader.consume_batches("orders", group_id="b", consumer_id="w", options=FAST_GROUP) as batches:
        async for batch in batches:
            assert seen(list(batch.events)) == expected
            break
    [large, _, binary] = [event async for event in store.read_stream("orders", partition=1)]
    assert large.payload == pydantic_core.to_json(LARGE)  # the original bytes, as gRPC and sinks send them
    assert binary.payload == BINARY


async def test_compressed_queue_messages_and_dead_letters_round_trip(store: EventStore) -> None:
    await store.create_stream(
        StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1, compression=Compression.ZSTD)
    )
    await store.enqueue_many("jobs", events())
    messages = await store.dequeue_many("jobs", max_messages=10)
    assert [message.data for message in messages] == [LARGE, SMALL, BINARY]
    for message in messages:
        await store.nack("jobs", message.receipt, reason="failed")  # the last attempt: dead-lettered
    assert [letter.data for letter in await store.dead_letters("jobs")] == [LARGE, SMALL, BINARY]
    await store.redrive_dead_letters("jobs")
    redriven = await store.dequeue_many("jobs", max_messages=10)
    assert [message.data for message in redriven] == [LARGE, SMALL, BINARY]


async def test_auto_created_streams_compress_as_their_rule_says(store_url: str) -> None:
    rules = [{"pattern": "logs-*", "compression": "gzip", "compression_threshold": 10}]
    async with await sluice.connect(store_url, auto_create_rules=rules) as store:
        await store.append("logs-web", EventData("Line", LARGE))
        assert (await store.get_stream("logs-web")).compression is Compression.GZIP
        assert [event.data async for event in store.read_stream("logs-web")] == [LARGE]


async def test_stream_config_validates_compression() -> None:
    with pytest.raises(InvalidArgumentError, match="compression"):
        StreamConfig(name="orders", compression="brotli")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="compression_threshold"):
        StreamConfig(name="orders", compression_threshold=-1)


@pytest.mark.postgres
@pytest.mark.parametrize("compression", [Compression.ZSTD, Compression.GZIP])
async def test_postgres_stores_fewer_bytes_and_records_the_encoding(
    postgres_dsn: str, compression: Compression
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        assert isinstance(store, PostgresEventStore)
        await store.create_stream(StreamConfig(name="plain"))
        await store.create_stream(compressed_stream("packed", compression))
        await store.append("plain", events())
        await store.append("packed", events(), partition=0)
        async with store.acquire() as connection:
            rows = await connection.fetch(
                "SELECT s.name, e.event_type, e.content_type, octet_length(e.data) AS size"
                "  FROM events e JOIN streams s USING (stream_id) ORDER BY s.name, e.event_offset"
            )
        stored = {(row["name"], row["event_type"]): (row["content_type"], row["size"]) for row in rows}
        assert stored[("packed", "Large")][0] == f"application/json; compression={compression.value}"
        assert stored[("packed", "Large")][1] * 5 < stored[("plain", "Large")][1]
        assert stored[("packed", "Binary")][1] < stored[("plain", "Binary")][1]
        assert (
            stored[("packed", "Small")] == stored[("plain", "Small")] == (JSON_CONTENT_TYPE, len(b'{"n":1}'))
        )  # under threshold


@pytest.mark.postgres
async def test_a_decompression_bomb_is_refused(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn, max_payload_bytes=10_000) as store:
        assert isinstance(store, PostgresEventStore)
        await store.create_stream(StreamConfig(name="orders", compression=Compression.ZSTD, compression_threshold=0))
        await store.append("orders", EventData("E", {"text": "x" * 5000}))
        bomb = zstandard.ZstdCompressor().compress(b"0" * 50_000_000)  # 50 MB from a few KB
        async with store.acquire() as connection:
            await connection.execute("UPDATE events SET data = $1", bomb)
        with pytest.raises(CorruptPayloadError, match="more than max_payload_bytes"):
            _ = [event async for event in store.read_stream("orders")]


def test_decompression_is_capped_and_corruption_is_typed() -> None:
    original = b"a" * 10_000
    for compression in (Compression.ZSTD, Compression.GZIP):
        packed = compress(original, compression)
        assert len(packed) < 200
        assert decompress(packed, compression, limit=10_000) == original
        with pytest.raises(CorruptPayloadError, match="more than max_payload_bytes"):
            decompress(packed, compression, limit=9_999)
        with pytest.raises(CorruptPayloadError, match=r"corrupt|truncated"):
            decompress(packed[: len(packed) // 2] + b"garbage", compression, limit=10_000)
    with pytest.raises(CorruptPayloadError, match="truncated"):
        decompress(gzip.compress(original)[:-4], Compression.GZIP, limit=10_000)
    with pytest.raises(CorruptPayloadError, match="unknown compression"):
        plain_payload(b"x", "application/json; compression=brotli", limit=10)


def test_the_policy_compresses_only_what_it_makes_smaller() -> None:
    batch = prepare_batch(
        [EventData("E", LARGE), EventData("E", SMALL), EventData("E", bytes(range(256)))], default_registry, 1_000_000
    )
    packed = CompressionPolicy(Compression.ZSTD, threshold=100).apply(batch)
    assert packed.content_types == [
        "application/json; compression=zstd",
        JSON_CONTENT_TYPE,
        BINARY_CONTENT_TYPE,  # random-looking bytes do not shrink: stored as they are
    ]
    assert packed.payloads[1:] == batch.payloads[1:]
    assert len(packed.payloads[0]) < len(batch.payloads[0])
    assert CompressionPolicy(Compression.NONE).apply(batch) is batch
