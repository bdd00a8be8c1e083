"""A commit over gRPC carries the epoch its event was delivered under: a commit of an event delivered
before an admin's forced reset is fenced and changes nothing (the server never fills in the member's
current epoch), and a commit without an epoch is refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

import sluice
from sluice.client import GroupEvent, RemoteGroupConsumption, SluiceClient
from sluice.core.events import EventData
from sluice.rpc.server import SluiceGrpcServer
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store import EventStore
from sluice.store.values.consumer_group_options import StartFrom, StartPosition

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_a_commit_from_before_a_forced_reset_is_fenced(store: EventStore, local_client: SluiceClient) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(60)])
    consumption = await local_client.consume(
        "orders", group_id="billing", consumer_id="worker-1", session_timeout=timedelta(seconds=3)
    )
    async with consumption:
        held = None
        while held is None or held.offset < 50:
            held = await asyncio.wait_for(anext(consumption), 10)
        assert held.offset == 50
        await held.commit()  # (its epoch is current: accepted)
        reader = store.consumer_groups()
        assert (await reader.describe("orders", "billing")).partitions[0].committed_offset == 51

        await reader.reset_offsets("orders", "billing", to=StartPosition(start_from=StartFrom.EARLIEST), force=True)
        # The member adopts the new epoch and delivers from the reset position again.
        redelivered = await asyncio.wait_for(_next_with_offset(consumption, 0), 15)
        assert redelivered.delivery_epoch > held.delivery_epoch

        with pytest.raises(sluice.FencedError):
            await held.commit()
        assert (await reader.describe("orders", "billing")).partitions[0].committed_offset == 0
        await redelivered.commit()  # the new delivery commits normally
        assert (await reader.describe("orders", "billing")).partitions[0].committed_offset == 1


async def test_a_commit_without_an_epoch_is_refused(store: EventStore, local_server: SluiceGrpcServer) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(3)])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{local_server.port}") as channel:
        call = sluice_pb2_grpc.PersistentSubscriptionsStub(channel).Consume()
        await call.write(
            sluice_pb2.ConsumeRequest(
                open=sluice_pb2.ConsumeOpen(stream_name="orders", group_id="g", consumer_id="c", initial_credits=1)
            )
        )
        response = await call.read()
        while response.WhichOneof("kind") != "event":
            response = await call.read()
        assert response.event.offset == 0
        offset = sluice_pb2.PartitionOffset(partition=0, next_offset=1)
        await call.write(sluice_pb2.ConsumeRequest(commit=sluice_pb2.Commit(request_id=7, offsets=[offset])))
        response = await call.read()
        while response.WhichOneof("kind") != "commit_result":
            response = await call.read()
        assert response.commit_result.request_id == 7
        assert response.commit_result.error_code == "invalid_argument"
        assert "epoch" in response.commit_result.error_message
        call.cancel()
    description = await store.consumer_groups().describe("orders", "g")
    assert description.partitions[0].committed_offset == 0


async def _next_with_offset(consumption: RemoteGroupConsumption, offset: int) -> GroupEvent:
    async for event in consumption:
        if event.offset == offset:
            return event
    raise AssertionError("the consumption ended")
