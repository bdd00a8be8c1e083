"""A gRPC Subscribe that the server refuses (a partition the stream does not have, a queue) ends with its
error before anything is sent: it used to send ``caught_up`` first, so a client marked itself caught up
on a subscription that could never deliver."""

from __future__ import annotations

import grpc
import pytest

from sluice import EventData, EventStore, StreamConfig, StreamType
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc


async def _messages_then_status(
    channel: grpc.aio.Channel, request: sluice_pb2.SubscribeRequest
) -> tuple[list[str], grpc.StatusCode]:
    kinds: list[str] = []
    try:
        async for response in sluice_pb2_grpc.StreamsStub(channel).Subscribe(request, timeout=10):
            kinds.append(str(response.WhichOneof("kind")))
    except grpc.aio.AioRpcError as error:
        return kinds, error.code()
    return kinds, grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("request_fields", "status"),
    [
        ({"stream_name": "orders", "partition": 9}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"stream_name": "orders", "partition": 2**31}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"stream_name": "jobs"}, grpc.StatusCode.FAILED_PRECONDITION),
    ],
    ids=["missing partition", "partition 2^31", "a queue"],
)
async def test_refused_subscription_sends_nothing_first(
    memory_store: EventStore,
    grpc_channel: grpc.aio.Channel,
    request_fields: dict[str, object],
    status: grpc.StatusCode,
) -> None:
    await memory_store.append("orders", EventData("Placed", {}))
    await memory_store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    kinds, code = await _messages_then_status(grpc_channel, sluice_pb2.SubscribeRequest(**request_fields))  # type: ignore[arg-type]
    assert code == status
    assert kinds == []
