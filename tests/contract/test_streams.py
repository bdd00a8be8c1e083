"""Contract: creating, describing, listing and deleting streams."""

from __future__ import annotations

import pytest

from sluice import (
    DeliverySemantics,
    EventData,
    EventStore,
    InvalidNameError,
    StreamAlreadyExistsError,
    StreamConfig,
    StreamNotFoundError,
    StreamType,
)


async def test_create_describe_list_delete(store: EventStore) -> None:
    created = await store.create_stream(StreamConfig(name="orders", partitions=3))
    assert (created.name, created.type, created.partitions) == ("orders", StreamType.PERSISTENT, 3)
    assert [partition.head for partition in created.partition_heads] == [0, 0, 0]
    await store.create_stream(StreamConfig(name="email-queue", type=StreamType.EPHEMERAL))

    assert [info.name for info in await store.list_streams()] == ["email-queue", "orders"]
    assert (await store.get_stream("email-queue")).type is StreamType.EPHEMERAL

    await store.delete_stream("orders")
    with pytest.raises(StreamNotFoundError, match="'orders' does not exist"):
        await store.get_stream("orders")
    assert [info.name for info in await store.list_streams()] == ["email-queue"]


async def test_create_is_idempotent_but_refuses_a_different_type(store: EventStore) -> None:
    first = await store.create_stream(StreamConfig(name="orders"))
    again = await store.create_stream(StreamConfig(name="orders"))
    assert again.created_at == first.created_at
    with pytest.raises(StreamAlreadyExistsError, match="persistent with 1 partition"):
        await store.create_stream(StreamConfig(name="orders", type=StreamType.EPHEMERAL))


async def test_delivery_semantics_are_stored_and_a_different_one_is_refused(store: EventStore) -> None:
    created = await store.create_stream(StreamConfig(name="jobs", delivery=DeliverySemantics.QUEUE))
    assert created.delivery is DeliverySemantics.QUEUE
    assert (await store.get_stream("jobs")).config.delivery is DeliverySemantics.QUEUE
    assert (await store.create_stream(StreamConfig(name="orders"))).delivery is DeliverySemantics.BROADCAST
    assert {info.name: info.delivery for info in await store.list_streams()} == {
        "jobs": DeliverySemantics.QUEUE,
        "orders": DeliverySemantics.BROADCAST,
    }
    assert (
        await store.create_stream(StreamConfig(name="jobs", delivery=DeliverySemantics.QUEUE))
    ).created_at == created.created_at
    with pytest.raises(StreamAlreadyExistsError, match="queue delivery"):
        await store.create_stream(StreamConfig(name="jobs"))
    with pytest.raises(StreamAlreadyExistsError, match="persistent with 1 partition"):
        await store.create_stream(StreamConfig(name="orders", delivery=DeliverySemantics.QUEUE))


async def test_delete_removes_data_and_a_recreated_stream_starts_empty(store: EventStore) -> None:
    await store.append("orders", [EventData("OrderPlaced", {"n": n}) for n in range(3)])
    await store.delete_stream("orders")
    result = await store.append("orders", EventData("OrderPlaced", {"n": 99}))
    assert result.offsets == (0,)
    assert [event.data for event in [e async for e in store.read_stream("orders")]] == [{"n": 99}]
    assert [event.data["n"] async for event in store.read_all()] == [99]


async def test_missing_streams_raise_typed_errors(store: EventStore) -> None:
    with pytest.raises(StreamNotFoundError):
        await store.get_stream("nope")
    with pytest.raises(StreamNotFoundError):
        await store.delete_stream("nope")
    with pytest.raises(StreamNotFoundError):
        [event async for event in store.read_stream("nope")]


@pytest.mark.parametrize(
    "name", ["", "-leading-dash", "has space", "x" * 201, "semi;colon", "quote'", "new\nline", "ünïcode"]
)
async def test_invalid_names_are_refused_everywhere(store: EventStore, name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid stream name"):
        await store.append(name, EventData("E", {}))
    with pytest.raises(InvalidNameError):
        await store.enqueue(name, EventData("E", {}))
    with pytest.raises(InvalidNameError):
        await store.get_stream(name)
    with pytest.raises(InvalidNameError):
        StreamConfig(name=name)
    assert await store.list_streams() == []


async def test_longest_valid_name_works(store: EventStore) -> None:
    name = "a" * 200
    await store.append(name, EventData("E", {}))
    assert (await store.get_stream(name)).head == 1
