"""``client.receive(queue)``: leased queue messages over gRPC, settled with ack, nack or extend.

The server never hands this receiver more than ``max_in_flight`` unsettled messages; each
settlement waits for the server's answer and raises StaleReceiptError when the lease was lost.

    async with client.receive("email-queue", max_in_flight=10) as messages:
        async for message in messages:
            await send(message.data)
            await message.ack()
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from google.protobuf import duration_pb2

from sluice.client.bidirectional_call import BidirectionalCall, Reconnection
from sluice.client.received import decode_data, decode_metadata
from sluice.client.remote_errors import error_from_code
from sluice.rpc.v1 import sluice_pb2


@dataclasses.dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A leased queue message. ``receipt`` proves this delivery; settle it with ack, nack or extend."""

    queue_name: str
    message_id: int
    receipt: str
    attempt: int
    event_type: str
    data: Any
    metadata: Mapping[str, Any]
    correlation_id: str | None
    enqueued_at: datetime
    visible_at: datetime
    receiver: QueueReceiver = dataclasses.field(repr=False, compare=False)

    async def ack(self) -> None:
        """Finish the message (StaleReceiptError if the lease was lost and it was redelivered)."""
        await self.receiver.settle("ack", self.receipt)

    async def nack(self, *, delay: timedelta | None = None, reason: str | None = None) -> None:
        """Give it back for redelivery after ``delay``, recording ``reason`` in its history."""
        await self.receiver.settle("nack", self.receipt, delay=delay, reason=reason)

    async def extend(self, *, by: timedelta) -> None:
        """Lengthen the lease by ``by``."""
        await self.receiver.settle("extend", self.receipt, delay=by)


class QueueReceiver:
    """An async iterator of ReceivedMessage that is also an async context manager."""

    def __init__(
        self, open_call: Callable[[], Any], opening: sluice_pb2.ReceiveOpen, *, reconnect_for: timedelta | None
    ) -> None:
        self._opening = sluice_pb2.ReceiveRequest(open=opening)
        self._call: BidirectionalCall[ReceivedMessage] = BidirectionalCall(
            open_call,
            self._route,
            "sluice-client-receive",
            reconnection=Reconnection(lambda: self._opening, reconnect_for, deliveries_end_with_the_call=False),
        )

    @property
    def reconnects(self) -> int:
        """How many times the call was opened again after the server went away (messages received
        before keep their leases: settle them as usual)."""
        return self._call.reconnects

    def _route(self, response: sluice_pb2.ReceiveResponse) -> ReceivedMessage | None:
        if response.WhichOneof("kind") == "message":
            message = response.message
            return ReceivedMessage(
                queue_name=message.queue_name,
                message_id=message.message_id,
                receipt=message.receipt,
                attempt=message.attempt,
                event_type=message.event_type,
                data=decode_data(message.content_type, message.data),
                metadata=decode_metadata(message.metadata_json),
                correlation_id=message.correlation_id or None,
                enqueued_at=message.enqueued_at.ToDatetime(tzinfo=UTC),
                visible_at=message.visible_at.ToDatetime(tzinfo=UTC),
                receiver=self,
            )
        result = response.result
        error = error_from_code(result.error_code, result.error_message) if result.error_code else None
        self._call.resolve(result.request_id, error)
        return None

    async def open(self) -> None:
        await self._call.write(self._opening)

    async def settle(
        self, kind: str, receipt: str, *, delay: timedelta | None = None, reason: str | None = None
    ) -> None:
        """Send an ack, nack or extend and wait for the server's answer."""

        def build(request_id: int) -> sluice_pb2.ReceiveRequest:
            settle = sluice_pb2.Settle(request_id=request_id, receipt=receipt, reason=reason or "")
            if delay is not None:
                duration = duration_pb2.Duration()
                duration.FromTimedelta(delay)
                settle.delay.CopyFrom(duration)
            request = sluice_pb2.ReceiveRequest()
            getattr(request, kind).CopyFrom(settle)
            return request

        error = await self._call.request(build)
        if error is not None:
            raise error

    def __aiter__(self) -> AsyncIterator[ReceivedMessage]:
        return self

    async def __anext__(self) -> ReceivedMessage:
        return await self._call.next_item()

    async def aclose(self) -> None:
        """Stop receiving; messages not settled become visible again when their leases run out."""
        await self._call.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()
