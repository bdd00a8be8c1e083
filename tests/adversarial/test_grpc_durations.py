"""Durations the protobuf spec calls invalid (nanos past a second, or of the other sign than seconds) are
refused with INVALID_ARGUMENT: they used to be read as some other length and the message enqueued."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from sluice import EventStore, StreamConfig, StreamType
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc


@pytest.mark.parametrize(
    "delay",
    [Duration(seconds=5, nanos=-5), Duration(seconds=-5, nanos=5), Duration(seconds=0, nanos=2_000_000_000)],
    ids=["negative nanos", "positive nanos, negative seconds", "two seconds of nanos"],
)
async def test_invalid_delay_is_refused(
    memory_store: EventStore, grpc_channel: grpc.aio.Channel, delay: Duration
) -> None:
    await memory_store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    message = sluice_pb2.EventToWrite(event_type="Job", content_type="application/json", data=b"{}")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await sluice_pb2_grpc.QueuesStub(grpc_channel).Enqueue(
            sluice_pb2.EnqueueRequest(queue_name="jobs", messages=[message], delay=delay), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    depth = await memory_store.queue_depth("jobs")
    assert (depth.waiting, depth.in_flight) == (0, 0)
