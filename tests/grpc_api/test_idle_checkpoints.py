"""Checkpoints of a gRPC subscription are sent when its offset has moved, not every interval while idle: 500
idle subscribers spent about a tenth of a core on checkpoints that told their clients nothing new (issue 18).
An idle subscription still gets one every ``IDLE_CHECKPOINT_SECONDS`` as a keep-alive."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from sluice.events import EventData
from sluice.rpc import subscription_sending
from sluice.rpc.server import SluiceGrpcServer
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store import EventStore

pytestmark = [pytest.mark.postgres]

CHECKPOINT_INTERVAL = Duration(nanos=100_000_000)


async def test_an_idle_subscription_gets_no_checkpoints_and_a_moving_one_does(
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
    assert "events" in kinds
    # the catch-up (events, caught-up marker) and one checkpoint of offset 3: not ten checkpoints of 3
    assert [message.checkpoint.next_offset for message in first if message.HasField("checkpoint")] == [3], kinds
    later_kinds = [message.WhichOneof("kind") for message in later]
    assert "events" in later_kinds
    assert [message.checkpoint.next_offset for message in later if message.HasField("checkpoint")] == [4], later_kinds


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
