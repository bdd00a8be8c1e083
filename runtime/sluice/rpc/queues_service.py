"""The ``sluice.v1.Queues`` service: enqueue, and a bidirectional Receive call per queue consumer.

Receive leases messages for the client while it has fewer than ``max_in_flight`` unsettled ones
(leased, not yet acked or nacked, lease not run out), and settles the receipts it sends back: ack,
nack with a delay, or extend. Each settlement is answered by a SettleResult carrying the error code
(``stale_receipt`` when the lease was lost) instead of ending the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc

from sluice.core.errors import InvalidArgumentError
from sluice.core.messages import Receipt
from sluice.rpc.call_context import Draining, correlation_id_of
from sluice.rpc.concurrent_tasks import run_until_first_ends
from sluice.rpc.conversions import event_data_from_message, queue_message_message, timedelta_from_duration
from sluice.rpc.database_outages import DEFAULT_GIVE_UP_AFTER_SECONDS, TRANSIENT_ERRORS, OutageRetry
from sluice.rpc.request_limits import checked_dedupe_keys, receipt_value
from sluice.rpc.serialized_writer import SerializedWriter
from sluice.rpc.status_codes import sluice_error_of, translate_errors
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store import DEFAULT_VISIBILITY_TIMEOUT, EventStore

DEFAULT_MAX_IN_FLIGHT = 10
MAX_IN_FLIGHT_LIMIT = 1000
IDLE_POLL_SECONDS = 0.2
"""How often an idle Receive call looks for new messages (a wake-up hint from other servers is the
store's business; this bounds the delay for messages enqueued elsewhere)."""


class _InFlight:
    """The leases a Receive call holds for its client, with when each runs out (monotonic)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lease_ends: dict[Receipt, float] = {}
        self.changed = asyncio.Event()

    def room(self) -> int:
        now = time.monotonic()
        for receipt in [receipt for receipt, end in self._lease_ends.items() if end <= now]:
            del self._lease_ends[receipt]  # the lease ran out: the message is someone else's again
        return self.limit - len(self._lease_ends)

    def add(self, receipt: Receipt, lease: timedelta) -> None:
        self._lease_ends[receipt] = time.monotonic() + lease.total_seconds()

    def extend(self, receipt: Receipt, by: timedelta) -> None:
        if receipt in self._lease_ends:
            self._lease_ends[receipt] = max(self._lease_ends[receipt], time.monotonic()) + by.total_seconds()

    def settle(self, receipt: Receipt) -> None:
        self._lease_ends.pop(receipt, None)
        self.changed.set()


class QueuesService(sluice_pb2_grpc.QueuesServicer):
    """Queues over gRPC, backed by one EventStore."""

    def __init__(
        self, store: EventStore, draining: Draining, *, outage_seconds: float = DEFAULT_GIVE_UP_AFTER_SECONDS
    ) -> None:
        self._store = store
        self._draining = draining
        self._outage_seconds = outage_seconds

    @translate_errors
    async def Enqueue(  # noqa: N802  (the gRPC method name)
        self, request: sluice_pb2.EnqueueRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> sluice_pb2.EnqueueResponse:
        keys = checked_dedupe_keys(list(request.dedupe_keys))
        results = await self._store.enqueue_many(
            request.queue_name,
            [event_data_from_message(message) for message in request.messages],
            delay=timedelta_from_duration(request.delay, field="delay") if request.HasField("delay") else None,
            correlation_id=correlation_id_of(context, request.correlation_id),
            dedupe_keys=keys,
        )
        return sluice_pb2.EnqueueResponse(
            message_ids=[result.message_id for result in results],
            deduplicated=[result.deduplicated for result in results],
        )

    @translate_errors
    async def Receive(  # type: ignore[override]  # noqa: N802  (context.write style)
        self, request_iterator: AsyncIterator[sluice_pb2.ReceiveRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await self._draining.run_stream(self._receive(request_iterator, context), context)

    async def _receive(
        self, requests: AsyncIterator[sluice_pb2.ReceiveRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("kind") != "open":
            raise InvalidArgumentError("a Receive call must start with an open message")
        opening = first.open
        limit = opening.max_in_flight or DEFAULT_MAX_IN_FLIGHT
        if limit > MAX_IN_FLIGHT_LIMIT:
            raise InvalidArgumentError(f"max_in_flight must be at most {MAX_IN_FLIGHT_LIMIT}, got {limit}")
        visibility = DEFAULT_VISIBILITY_TIMEOUT
        if opening.HasField("visibility_timeout"):
            visibility = timedelta_from_duration(opening.visibility_timeout, field="visibility_timeout")
        in_flight = _InFlight(limit)
        writer = SerializedWriter(context)
        await run_until_first_ends(
            self._deliver(opening.queue_name, visibility, in_flight, writer),
            self._settle(opening.queue_name, requests, in_flight, writer),
        )

    async def _deliver(
        self, queue_name: str, visibility: timedelta, in_flight: _InFlight, writer: SerializedWriter
    ) -> None:
        """Lease messages while there is room. A database outage does not end the call: leasing
        waits until the database answers again (the call ends with UNAVAILABLE only if the outage
        lasts longer than the retry allows); settlements meanwhile answer ``connection_lost``."""
        retry = OutageRetry(f"receiver of queue {queue_name!r}", give_up_after_seconds=self._outage_seconds)
        while True:
            in_flight.changed.clear()
            room = in_flight.room()
            try:
                messages = (
                    await self._store.dequeue_many(queue_name, max_messages=room, visibility_timeout=visibility)
                    if room > 0
                    else []
                )
            except TRANSIENT_ERRORS as error:
                await retry.until_reachable(lambda: self._store.get_stream(queue_name), error)
                continue
            for message in messages:
                in_flight.add(message.receipt, visibility)
                await writer.write(sluice_pb2.ReceiveResponse(message=queue_message_message(message)))
            if not messages:
                # Wait for a settlement (room) or the next poll; leases that run out free room too.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(in_flight.changed.wait(), timeout=IDLE_POLL_SECONDS)

    async def _settle(
        self,
        queue_name: str,
        requests: AsyncIterator[sluice_pb2.ReceiveRequest],
        in_flight: _InFlight,
        writer: SerializedWriter,
    ) -> None:
        async for request in requests:
            kind = request.WhichOneof("kind")
            if kind not in ("ack", "nack", "extend"):
                raise InvalidArgumentError(f"unexpected {kind!r} message after the open message")
            settle: sluice_pb2.Settle = getattr(request, kind)
            result = sluice_pb2.SettleResult(request_id=settle.request_id, receipt=settle.receipt)
            try:
                receipt = receipt_value(settle.receipt)
                delay = timedelta_from_duration(settle.delay, field="delay") if settle.HasField("delay") else None
                if kind == "ack":
                    try:
                        await self._store.acknowledge(queue_name, receipt)
                    finally:
                        in_flight.settle(receipt)  # settled or stale: either way the client holds it no more
                elif kind == "nack":
                    try:
                        await self._store.nack(queue_name, receipt, delay=delay, reason=settle.reason or None)
                    finally:
                        in_flight.settle(receipt)
                else:
                    if delay is None:
                        raise InvalidArgumentError("extend needs a delay: how much longer the lease should last")
                    await self._store.extend(queue_name, receipt, by=delay)
                    in_flight.extend(receipt, delay)
            except Exception as error:  # answered in the SettleResult; the call goes on
                refused = sluice_error_of(error)
                result.error_code, result.error_message = refused.code, str(refused)
            await writer.write(sluice_pb2.ReceiveResponse(result=result))
