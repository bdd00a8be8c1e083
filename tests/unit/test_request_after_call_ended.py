"""A request written to a bidirectional call that has just ended, before the client's reader noticed, is sent
again on the reopened call (a queue ack right after a gateway restart failed with "the call has ended": found
once in three full runs of tests/grpc_api/test_stream_reconnects.py). The instant cannot be produced with a real
server on demand, so the call is a stand-in here: its first write finds it ended, its read ends it UNAVAILABLE a
moment later.

gRPC reports such a write in two ways: "RPC already finished" (InvalidStateError), or INTERNAL "Internal error
from Core" from a send that failed in gRPC Core, which then also replaces the status the server ended the call
with (grpc/grpc#36066; a queue ack right after a server restart failed so in a full run of ./dev test)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from sluice.client.bidirectional_call import BidirectionalCall, Reconnection
from sluice.core.errors import RemoteCallError
from sluice.rpc.v1 import sluice_pb2


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "restart")


def failed_send() -> grpc.aio.AioRpcError:
    """What grpc.aio raised in the failed run: the call's status after its send failed in gRPC Core."""
    return grpc.aio.AioRpcError(
        grpc.StatusCode.INTERNAL,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        "Internal error from Core",
        'Failed "execute_batch": (<grpc._cython.cygrpc.SendMessageOperation object at 0x7f11215d6f30>,)',
    )


class EndedCall:
    """The first call: every write finds it ended (``write_error``); its read fails with ``read_error``
    after a moment."""

    def __init__(self, write_error: BaseException, read_error: BaseException) -> None:
        self.written: list[Message] = []
        self.write_error = write_error
        self.read_error = read_error

    async def write(self, request: Message) -> None:
        raise self.write_error

    async def read(self) -> Any:
        await asyncio.sleep(0.05)
        raise self.read_error

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


def ack(request_id: int) -> Message:
    return sluice_pb2.ReceiveRequest(ack=sluice_pb2.Settle(request_id=request_id, receipt="1.1"))


def receiver_call(calls: list[Any]) -> tuple[BidirectionalCall[Any], list[Any]]:
    """A queue receiver's call over the stand-ins ``calls`` (opened in turn) and the list of those opened."""
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
    return call, opened


@pytest.mark.parametrize(
    ("write_error", "read_error"),
    [
        (asyncio.InvalidStateError("RPC already finished."), unavailable()),
        (failed_send(), unavailable()),
        (failed_send(), failed_send()),  # the server's UNAVAILABLE lost to the failed send's INTERNAL
    ],
    ids=["already-finished", "failed-send", "failed-send-status-lost"],
)
async def test_a_request_that_found_the_call_ended_is_sent_on_the_reopened_call(
    write_error: BaseException, read_error: BaseException
) -> None:
    call, opened = receiver_call([EndedCall(write_error, read_error), ReopenedCall()])
    try:
        answer = await asyncio.wait_for(call.request(ack), 10)
    finally:
        await call.close()
    assert answer is None
    assert len(opened) == 2
    reopened = opened[1]
    kinds = [request.WhichOneof("kind") for request in reopened.written]
    assert kinds == ["open", "ack"], kinds


async def test_a_server_internal_error_is_not_taken_for_a_lost_status() -> None:
    """INTERNAL that the server sent (no failed send behind it) still ends the call: it is not reopened."""
    server_error = grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), "bug")
    call, opened = receiver_call([EndedCall(server_error, server_error), EndedCall(server_error, server_error)])
    try:
        with pytest.raises(RemoteCallError, match="INTERNAL"):
            await asyncio.wait_for(call.request(ack), 10)
        await asyncio.sleep(0.2)
    finally:
        await call.close()
    assert len(opened) == 1
