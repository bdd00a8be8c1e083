"""Contract: appending, optimistic concurrency, idempotency, reading and subscribing."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from sluice import (
    ConcurrencyError,
    Direction,
    DuplicateEventIdError,
    EventData,
    EventStore,
    EventTypeRegistry,
    ExpectedOffset,
    InvalidArgumentError,
    PayloadTooLargeError,
    RecordedEvent,
    StreamConfig,
    StreamType,
    StreamTypeError,
)


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int


@dataclasses.dataclass
class OrderShipped:
    order_id: str
    carrier: str


async def read(store: EventStore, stream: str, **options: object) -> list[RecordedEvent]:
    return [event async for event in store.read_stream(stream, **options)]  # type: ignore[arg-type]


async def test_append_assigns_dense_offsets_and_reads_back_every_field(store: EventStore) -> None:
    first = await store.append(
        "orders",
        [OrderPlaced(order_id="o-1", total_cents=1250), OrderShipped(order_id="o-1", carrier="dhl")],
        correlation_id="request-7",
    )
    second = await store.append("orders", EventData("Note", {"text": "hi"}, metadata={"source": "test"}))
    assert first.offsets == (0, 1)
    assert second.offsets == (2,)
    assert not first.deduplicated

    events = await read(store, "orders")
    assert [event.offset for event in events] == [0, 1, 2]
    assert [event.event_type for event in events] == ["OrderPlaced", "OrderShipped", "Note"]
    assert events[0].data == {"order_id": "o-1", "total_cents": 1250}
    assert events[1].data == {"order_id": "o-1", "carrier": "dhl"}
    assert events[2].metadata == {"source": "test"}
    assert [event.correlation_id for event in events] == ["request-7", "request-7", None]
    assert all(event.stream_name == "orders" for event in events)
    assert all(isinstance(event.event_id, uuid.UUID) for event in events)
    assert events[0].timestamp.tzinfo is not None
    assert events[0].timestamp <= events[1].timestamp <= events[2].timestamp
    assert abs(events[0].timestamp - datetime.now(UTC)) < timedelta(minutes=1)


async def test_binary_payloads_round_trip(store: EventStore) -> None:
    payload = bytes(range(256))
    await store.append("blobs", EventData("Blob", payload))
    [event] = await read(store, "blobs")
    assert event.data == payload
    assert event.content_type == "application/octet-stream"


async def test_decode_uses_the_registry_and_upcasters(store: EventStore) -> None:
    registry = EventTypeRegistry()
    await store.append("orders", EventData("OrderPlaced", {"order_id": "o-1", "total": 12.5}, schema_version=1))

    @registry.register(version=2)
    class OrderPlaced(BaseModel):  # version 2 stores cents
        order_id: str
        total_cents: int

    @registry.upcaster("OrderPlaced", from_version=1)
    def euros_to_cents(data: dict[str, object]) -> dict[str, object]:
        return {"order_id": data["order_id"], "total_cents": round(float(data["total"]) * 100)}  # type: ignore[arg-type]

    [event] = await read(store, "orders")
    decoded = event.decode(registry)
    assert decoded == OrderPlaced(order_id="o-1", total_cents=1250)


async def test_expected_offset_gives_optimistic_concurrency(store: EventStore) -> None:
    await store.append("account-1", EventData("Opened", {}), expected_offset=ExpectedOffset.NO_STREAM)
    with pytest.raises(ConcurrencyError, match="expected no events yet, but its last offset is 0"):
        await store.append("account-1", EventData("Opened", {}), expected_offset=ExpectedOffset.NO_STREAM)
    await store.append("account-1", EventData("Deposited", {}), expected_offset=0)
    conflict = r"expected last offset 0, but its last offset is 1 \(head 2\)"
    with pytest.raises(ConcurrencyError, match=conflict) as caught:
        await store.append("account-1", EventData("Deposited", {}), expected_offset=0)
    assert caught.value.head == 2
    await store.append("account-1", EventData("Deposited", {}), expected_offset=ExpectedOffset.STREAM_EXISTS)
    await store.append("account-1", EventData("Deposited", {}), expected_offset=ExpectedOffset.ANY)
    with pytest.raises(ConcurrencyError):
        await store.append("account-2", EventData("X", {}), expected_offset=ExpectedOffset.STREAM_EXISTS)
    assert [event.offset for event in await read(store, "account-1")] == [0, 1, 2, 3]


async def test_a_failed_expectation_stores_nothing(store: EventStore) -> None:
    await store.append("s", EventData("A", {}))
    with pytest.raises(ConcurrencyError):
        await store.append("s", [EventData("B", {}), EventData("C", {})], expected_offset=5)
    assert (await store.get_stream("s")).head == 1


async def test_appending_known_event_ids_is_idempotent(store: EventStore) -> None:
    batch = [EventData("A", {"n": 1}), EventData("B", {"n": 2})]
    original = await store.append("s", batch)
    await store.append("s", EventData("C", {}))
    retried = await store.append("s", batch)
    assert retried.offsets == original.offsets
    assert retried.deduplicated
    assert (await store.get_stream("s")).head == 3
    with pytest.raises(DuplicateEventIdError, match="1 of the 2 event ids"):
        await store.append("s", [batch[0], EventData("D", {})])
    assert (await store.get_stream("s")).head == 3


async def test_read_options(store: EventStore) -> None:
    await store.append("s", [EventData("E", {"n": n}) for n in range(10)])
    assert [e.offset for e in await read(store, "s", from_offset=7)] == [7, 8, 9]
    assert [e.offset for e in await read(store, "s", limit=3)] == [0, 1, 2]
    assert [e.offset for e in await read(store, "s", direction=Direction.BACKWARDS, limit=3)] == [9, 8, 7]
    assert [e.offset for e in await read(store, "s", direction=Direction.BACKWARDS, from_offset=1)] == [1, 0]
    assert await read(store, "s", from_offset=10) == []
    events = await read(store, "s")
    await asyncio.sleep(0.01)
    await store.append("s", EventData("E", {"n": 10}))
    late = (await read(store, "s", from_offset=10))[0]
    assert [e.offset for e in await read(store, "s", from_time=late.timestamp)] == [10]
    assert (await read(store, "s", from_time=events[0].timestamp))[0].offset == 0
    future = late.timestamp + timedelta(hours=1)
    assert await read(store, "s", from_time=future) == []


async def test_reads_page_through_long_streams(store: EventStore) -> None:
    store.options = store.options.model_copy(update={"read_page_size": 7})
    await store.append("s", [EventData("E", {"n": n}) for n in range(30)])
    assert [e.offset for e in await read(store, "s")] == list(range(30))
    assert [e.offset for e in await read(store, "s", limit=20)] == list(range(20))
    assert [e.offset for e in await read(store, "s", direction=Direction.BACKWARDS)] == list(range(29, -1, -1))


async def test_partitions_route_by_key_and_keep_offsets_dense(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=4))
    results = [await store.append("orders", EventData("E", {"k": key}), partition_key=key) for key in ["a", "b"] * 5]
    by_key = {key: {r.partitions[0] for r, k in zip(results, ["a", "b"] * 5, strict=True) if k == key} for key in "ab"}
    assert all(len(partitions) == 1 for partitions in by_key.values())
    for partition in range(4):
        offsets = [e.offset for e in await read(store, "orders", partition=partition)]
        assert offsets == list(range(len(offsets)))
    spread = {(await store.append("orders", EventData("E", {}))).partitions[0] for _ in range(8)}
    assert spread == {0, 1, 2, 3}
    explicit = await store.append("orders", EventData("E", {}), partition=2)
    assert explicit.partitions == (2,)
    with pytest.raises(InvalidArgumentError, match="partition 4 does not exist"):
        await store.append("orders", EventData("E", {}), partition=4)


async def test_read_all_returns_every_stream_in_commit_order(store: EventStore) -> None:
    await store.append("a", EventData("E", {"n": 1}))
    await store.append("b", [EventData("E", {"n": 2}), EventData("E", {"n": 3})])
    await store.append("a", EventData("E", {"n": 4}))
    events = [event async for event in store.read_all()]
    assert [event.data["n"] for event in events] == [1, 2, 3, 4]
    assert [event.stream_name for event in events] == ["a", "b", "b", "a"]
    positions = [event.global_position for event in events]
    assert positions == sorted(positions)
    rest = [event.data["n"] async for event in store.read_all(after=positions[1])]
    assert rest == [3, 4]
    assert [event.data["n"] async for event in store.read_all(limit=2)] == [1, 2]


async def test_subscribe_catches_up_then_goes_live(store: EventStore) -> None:
    await store.append("s", [EventData("E", {"n": n}) for n in range(3)])
    received: list[int] = []

    async def consume() -> None:
        async for event in store.subscribe("s", from_offset=1):
            received.append(event.offset)
            if len(received) == 4:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await store.append("s", EventData("E", {"n": 3}))
    await store.append("s", EventData("E", {"n": 4}))
    await asyncio.wait_for(task, timeout=10)
    assert received == [1, 2, 3, 4]


async def test_subscribe_all_sees_new_events_of_every_stream(store: EventStore) -> None:
    received: list[str] = []

    async def consume() -> None:
        async for event in store.subscribe_all():
            received.append(event.stream_name)
            if len(received) == 3:
                return

    task = asyncio.create_task(consume())
    await store.append("a", EventData("E", {}))
    await store.append("b", EventData("E", {}))
    await store.append("c", EventData("E", {}))
    await asyncio.wait_for(task, timeout=10)
    assert received == ["a", "b", "c"]


async def test_bad_input_gets_typed_errors_and_stores_nothing(store: EventStore) -> None:
    store.options = store.options.model_copy(update={"max_payload_bytes": 1000})
    with pytest.raises(PayloadTooLargeError, match="1013 bytes, over the limit of 1000"):
        await store.append("s", [EventData("Small", {}), EventData("Big", "x" * 1011)])
    with pytest.raises(InvalidArgumentError, match="at least one event"):
        await store.append("s", [])
    event = EventData("A", {})
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        await store.append("s", [event, event])
    with pytest.raises(InvalidArgumentError, match="cannot append 'int'"):
        await store.append("s", 42)
    with pytest.raises(InvalidArgumentError, match="not JSON-serializable"):
        await store.append("s", EventData("A", {"when": object()}))
    for not_finite in (float("nan"), float("inf"), -float("inf")):  # JSON cannot hold them: never stored as null
        with pytest.raises(InvalidArgumentError, match=r"^data of event type 'A' holds NaN or Infinity"):
            await store.append("s", EventData("A", {"total": not_finite}))
        with pytest.raises(InvalidArgumentError, match=r"^data of event type 'B' holds NaN or Infinity"):
            await store.append("s", [EventData("A", {"total": 1}), EventData("B", {"total": not_finite})])
        with pytest.raises(InvalidArgumentError, match=r"^metadata holds NaN or Infinity"):
            await store.append("s", EventData("A", {}, metadata={"score": [not_finite]}))
    with pytest.raises(InvalidArgumentError, match="NUL character"):  # jsonb cannot hold it: both backends refuse
        await store.append("s", EventData("A", {}, metadata={"note": "a\x00b"}))
    with pytest.raises(InvalidArgumentError, match="expected_offset must be"):
        await store.append("s", EventData("A", {}), expected_offset=-1)
    assert await store.list_streams() == []
    await store.append("s", EventData("A", {}))
    with pytest.raises(InvalidArgumentError, match="from_offset must be >= 0"):
        await read(store, "s", from_offset=-1)
    with pytest.raises(InvalidArgumentError, match="limit must be positive"):
        await read(store, "s", limit=0)
    assert (await store.get_stream("s")).head == 1


async def test_streams_and_queues_do_not_mix(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    await store.append("log", EventData("E", {}))
    with pytest.raises(StreamTypeError, match="use enqueue"):
        await store.append("jobs", EventData("E", {}))
    with pytest.raises(StreamTypeError, match="use append"):
        await store.enqueue("log", EventData("E", {}))
    with pytest.raises(StreamTypeError):
        await read(store, "jobs")
    with pytest.raises(StreamTypeError):
        await store.dequeue("log")


async def test_from_time_finds_the_first_event_at_or_after_each_batch(store: EventStore) -> None:
    firsts = []
    for batch in range(6):
        result = await store.append("s", [EventData("E", {"batch": batch}) for _ in range(batch + 3)])
        firsts.append(result.first_offset)
        await asyncio.sleep(0.005)
    events = await read(store, "s")
    for first in firsts:
        at = events[first].timestamp
        assert (await read(store, "s", from_time=at, limit=1))[0].offset == first
        just_after = at + timedelta(microseconds=1)
        following = await read(store, "s", from_time=just_after, limit=1)
        assert not following or following[0].offset > first
    before_everything = events[0].timestamp - timedelta(days=1)
    assert (await read(store, "s", from_time=before_everything, limit=1))[0].offset == 0
