"""Checkpoints of a gRPC subscription are a keep-alive, sent only when nothing else was for
``IDLE_CHECKPOINT_SECONDS``: 500 idle subscribers spent about a tenth of a core on checkpoints that told their
clients nothing new, and after a fan-out the checkpoint of every moved subscription, an interval later, delayed
the next append's deliveries (issue 18, docs/subscriptions.md). Every batch already tells the client the offset
it would resume from."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from sluice.core.events import EventData
from sluice.rpc import subscription_sending
from sluice.rpc.server import SluiceGrpcServer
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store import EventStore

pytestmark = [pytest.mark.postgres]

CHECKPOINT_INTERVAL = Duration(nanos=100_000_000)


async def test_events_carry_the_offset_and_no_checkpoint_follows_them(
    store: EventStore, local_server: SluiceGrpcServer
) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(3)])
    received: list[sluice_pb2.SubscribeResponse] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{local_server.port}") as channel:
        stub = sluice_pb2_grpc.StreamsStub(channel)
        call = stub.Subscribe(
            sluice_pb2.SubscribeRequest(stream_name="orders", from_offset=0, checkpoint_interval=CHECKPOINT_INTERVAL)
        )

        async def collect() -> None:
            async for message in call:
                received.append(message)

        collector = asyncio.ensure_future(collect())
        try:
            await asyncio.sleep(1.0)  # ten checkpoint intervals
            first = list(received)
            await store.append("orders", EventData("Placed", {"n": 3}))
            await asyncio.sleep(1.0)
        finally:
            call.cancel()
            await asyncio.gather(collector, return_exceptions=True)
    later = received[len(first) :]
    kinds = [message.WhichOneof("kind") for message in first]
    # the catch-up's batch of offsets 0-2 (flagged caught up) and the marker: ten checkpoint intervals, no checkpoint
    assert kinds == ["events", "caught_up"], kinds
    assert [event.offset for event in first[0].events.events] == [0, 1, 2]
    assert first[1].caught_up.next_offset == 3
    later_kinds = [message.WhichOneof("kind") for message in later]
    assert later_kinds == ["events"], later_kinds
    assert [event.offset for event in later[0].events.events] == [3]


async def test_an_idle_subscription_still_gets_a_keep_alive_checkpoint(
    store: EventStore, local_server: SluiceGrpcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscription_sending, "IDLE_CHECKPOINT_SECONDS", 0.5)
    await store.append("orders", EventData("Placed", {"n": 0}))
    received: list[sluice_pb2.SubscribeResponse] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{local_server.port}") as channel:
        call = sluice_pb2_grpc.StreamsStub(channel).Subscribe(
            sluice_pb2.SubscribeRequest(stream_name="orders", from_offset=1, checkpoint_interval=CHECKPOINT_INTERVAL)
        )

        async def collect() -> None:
            async for message in call:
                received.append(message)

        collector = asyncio.ensure_future(collect())
        try:
            await asyncio.sleep(1.3)  # thirteen checkpoint intervals, two keep-alive periods
        finally:
            call.cancel()
            await asyncio.gather(collector, return_exceptions=True)
    checkpoints = [message.checkpoint.next_offset for message in received if message.HasField("checkpoint")]
    assert checkpoints == [1, 1], [message.WhichOneof("kind") for message in received]
