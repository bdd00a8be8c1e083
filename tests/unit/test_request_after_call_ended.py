"""A request written to a bidirectional call that has just ended, before the client's reader noticed, is sent
again on the reopened call (a queue ack right after a gateway restart failed with "the call has ended": found
once in three full runs of tests/grpc_api/test_stream_reconnects.py). The instant cannot be produced with a real
server on demand, so the call is a stand-in here: its first write finds it ended, its read ends it UNAVAILABLE a
moment later."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf.message import Message

from sluice.client.bidirectional_call import BidirectionalCall, Reconnection
from sluice.rpc.v1 import sluice_pb2


class EndedCall:
    """The first call: every write finds it ended; its read fails with UNAVAILABLE after a moment."""

    def __init__(self) -> None:
        self.written: list[Message] = []

    async def write(self, request: Message) -> None:
        raise asyncio.InvalidStateError("RPC already finished.")

    async def read(self) -> Any:
        await asyncio.sleep(0.05)
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "restart")

    def cancel(self) -> None:
        pass


class ReopenedCall:
    """The call opened again: it answers every settle with its request id."""

    def __init__(self) -> None:
        self.written: list[Message] = []
        self.answers: asyncio.Queue[Any] = asyncio.Queue()

    async def write(self, request: Message) -> None:
        self.written.append(request)
        if isinstance(request, sluice_pb2.ReceiveRequest) and request.HasField("ack"):
            await self.answers.put(request.ack.request_id)

    async def read(self) -> Any:
        return await self.answers.get()

    def cancel(self) -> None:
        pass


async def test_a_request_that_found_the_call_ended_is_sent_on_the_reopened_call() -> None:
    calls: list[Any] = [EndedCall(), ReopenedCall()]
    opened: list[Any] = []

    def open_call() -> Any:
        opened.append(calls[len(opened)])
        return opened[-1]

    call: BidirectionalCall[Any] = BidirectionalCall(
        open_call,
        lambda request_id: call.resolve(request_id, None),
        "test-call",
        reconnection=Reconnection(
            lambda: sluice_pb2.ReceiveRequest(open=sluice_pb2.ReceiveOpen(queue_name="jobs")),
            timedelta(seconds=10),
            deliveries_end_with_the_call=False,
        ),
    )

    def ack(request_id: int) -> Message:
        return sluice_pb2.ReceiveRequest(ack=sluice_pb2.Settle(request_id=request_id, receipt="1.1"))

    try:
        answer = await asyncio.wait_for(call.request(ack), 10)
    finally:
        await call.close()
    assert answer is None
    assert len(opened) == 2
    reopened = opened[1]
    kinds = [request.WhichOneof("kind") for request in reopened.written]
    assert kinds == ["open", "ack"], kinds
