"""A client talking to a server in another process: append, read, subscribe, and stream creation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

import sluice
from sluice.client import ReceivedEvent, SluiceClient
from sluice.core.events import Direction, EventData, ExpectedOffset
from sluice.rpc.v1 import sluice_pb2
from tests.grpc_api.server_process import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int


async def test_append_then_read_with_correlation_and_idempotency(
    remote_client: SluiceClient, postgres_dsn: str
) -> None:
    event_id = uuid.uuid4()
    first = await remote_client.append(
        "orders",
        [OrderPlaced(order_id="o-1", total_cents=1250), EventData("Raw", b"\x00\x01", event_id=event_id)],
        expected_offset=ExpectedOffset.NO_STREAM,
        correlation_id="request-42",
    )
    assert first.offsets == (0, 1)
    assert not first.deduplicated
    again = await remote_client.append("orders", [EventData("Raw", b"\x00\x01", event_id=event_id)])
    assert again.deduplicated
    assert again.offsets == (1,)
    await remote_client.append("orders", EventData("Note", {"n": 3}, metadata={"by": "test"}), expected_offset=1)

    events = [event async for event in remote_client.read("orders")]
    assert [event.offset for event in events] == [0, 1, 2]
    assert events[0].event_type == "OrderPlaced"
    assert events[0].data == {"order_id": "o-1", "total_cents": 1250}
    assert events[0].correlation_id == "request-42"
    assert events[1].data == b"\x00\x01"
    assert events[1].event_id == event_id
    assert events[2].metadata == {"by": "test"}

    # What the server stored is what the library reads from the same database.
    async with await sluice.connect(postgres_dsn) as store:
        stored = [event async for event in store.read_stream("orders")]
    assert [(event.offset, event.event_id, event.correlation_id) for event in stored] == [
        (event.offset, event.event_id, event.correlation_id) for event in events
    ]

    backwards = [event.offset async for event in remote_client.read("orders", direction=Direction.BACKWARDS, limit=2)]
    assert backwards == [2, 1]
    from_offset = [event.offset async for event in remote_client.read("orders", from_offset=1)]
    assert from_offset == [1, 2]
    later = [event async for event in remote_client.read("orders", from_time=datetime.now(UTC) + timedelta(hours=1))]
    assert later == []
    from_start = [event.offset async for event in remote_client.read("orders", from_time=events[2].timestamp)]
    assert from_start == [2]  # events 0 and 1 were one batch, stored at one time


async def test_correlation_id_from_metadata_and_partition_keys(server_process: ServerProcess) -> None:
    description = None
    async with await SluiceClient.connect(server_process.target) as client:
        description = await client.create_stream("carts", partitions=4)
        assert description.partitions == 4
        first = await client.append("carts", EventData("Added", {"sku": "a"}), partition_key="cart-7")
        second = await client.append("carts", EventData("Added", {"sku": "b"}), partition_key="cart-7")
        assert first.partitions == second.partitions
        explicit = await client.append("carts", EventData("Added", {"sku": "c"}), partition=3)
        assert explicit.partitions == (3,)
        partition = first.partitions[0]
        events = [event async for event in client.read("carts", partition=partition)]
        assert [event.data["sku"] for event in events][:2] == ["a", "b"]


async def test_subscribe_catches_up_then_goes_live(remote_client: SluiceClient) -> None:
    await remote_client.append("ticks", [EventData("Tick", {"n": n}) for n in range(250)])
    subscription = remote_client.subscribe("ticks", from_offset=200, checkpoint_interval=timedelta(milliseconds=100))
    received: list[ReceivedEvent] = []
    try:
        async for event in subscription:
            received.append(event)
            if len(received) == 50:
                break
        assert subscription.caught_up or [event.offset for event in received][-1] == 249
        appender = asyncio.create_task(
            remote_client.append("ticks", [EventData("Tick", {"n": n}) for n in range(250, 260)])
        )
        async for event in subscription:
            received.append(event)
            if len(received) == 60:
                break
        await appender
    finally:
        await subscription.aclose()
    assert [event.offset for event in received] == list(range(200, 260))
    assert [event.data["n"] for event in received] == list(range(200, 260))
    assert subscription.caught_up
    assert subscription.next_offset == 260


async def test_consume_as_a_group_member_and_commit(remote_client: SluiceClient, postgres_dsn: str) -> None:
    await remote_client.append("payments", [EventData("Paid", {"n": n}) for n in range(10)])
    async with await remote_client.consume("payments", group_id="ledger", consumer_id="worker-1") as consumption:
        received = []
        async for event in consumption:
            received.append(event.data["n"])
            if len(received) == 6:
                await event.commit()
                break
        assert consumption.partitions == (0,)
    assert received == list(range(6))
    async with await sluice.connect(postgres_dsn) as store:
        description = await store.consumer_groups().describe("payments", "ledger")
    assert description.partitions[0].committed_offset == 6
    assert description.active_members == ()  # closing the call left the group

    # The next member resumes from the commit.
    async with await remote_client.consume("payments", group_id="ledger", consumer_id="worker-2") as consumption:
        resumed = [(await anext(consumption)).data["n"] for _ in range(4)]
    assert resumed == [6, 7, 8, 9]


async def test_create_a_queue_delivery_stream(remote_client: SluiceClient, postgres_dsn: str) -> None:
    description = await remote_client.create_stream("work-items", partitions=2, delivery=sluice.DeliverySemantics.QUEUE)
    assert description.delivery == sluice_pb2.DELIVERY_SEMANTICS_QUEUE
    default = await remote_client.create_stream("audit")
    assert default.delivery == sluice_pb2.DELIVERY_SEMANTICS_BROADCAST
    async with await sluice.connect(postgres_dsn) as store:
        assert (await store.get_stream("work-items")).delivery is sluice.DeliverySemantics.QUEUE
        assert (await store.get_stream("audit")).delivery is sluice.DeliverySemantics.BROADCAST
