"""The ``sluice.v1.Streams`` service: create streams, append batches, read, and subscribe.

Subscribe catches up from an offset and then goes live. A pump task reads the store's subscription
into a small bounded buffer; the call sends whatever is buffered as one batch, so a burst travels in
few messages while a single live event goes out at once (sluice.rpc.subscription_sending). The
buffer's bound is the backpressure: a client that stops reading stops the pump (HTTP/2 flow control
stalls the writes), nothing piles up.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, cast

import grpc

from sluice.core.errors import InvalidArgumentError, StreamTypeError
from sluice.core.streams import DeliverySemantics, StreamConfig, StreamInfo, StreamType
from sluice.core.validation import MAX_INT32, check_integer
from sluice.rpc.call_context import Draining, correlation_id_of
from sluice.rpc.conversions import (
    datetime_from_timestamp,
    direction_from_message,
    events_data_from_messages,
    expected_offset_from_request,
    recorded_event_message,
    timedelta_from_duration,
)
from sluice.rpc.database_outages import DEFAULT_GIVE_UP_AFTER_SECONDS, TRANSIENT_ERRORS, OutageRetry
from sluice.rpc.live_tails import LiveTails
from sluice.rpc.request_limits import checked_offset
from sluice.rpc.status_codes import translate_errors
from sluice.rpc.subscription_sending import (
    EventMessages,
    SubscriptionBuffer,
    send_subscription,
    subscribe_response_bytes,
)
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store import EventStore

READ_BATCH_EVENTS = 500
"""Events per Read message (a page of the store is cut into messages of this size)."""
DEFAULT_CHECKPOINT_INTERVAL = timedelta(seconds=1)
MINIMUM_CHECKPOINT_INTERVAL = timedelta(milliseconds=50)


def stream_description(info: StreamInfo) -> sluice_pb2.StreamDescription:
    return sluice_pb2.StreamDescription(
        name=info.name,
        type=sluice_pb2.STREAM_TYPE_EPHEMERAL
        if info.type is StreamType.EPHEMERAL
        else sluice_pb2.STREAM_TYPE_PERSISTENT,
        partitions=info.partitions,
        heads=[partition.head for partition in info.partition_heads],
        delivery=sluice_pb2.DELIVERY_SEMANTICS_QUEUE
        if info.delivery is DeliverySemantics.QUEUE
        else sluice_pb2.DELIVERY_SEMANTICS_BROADCAST,
    )


class StreamsService(sluice_pb2_grpc.StreamsServicer):
    """Persistent streams over gRPC, backed by one EventStore."""

    def __init__(
        self, store: EventStore, draining: Draining, *, outage_seconds: float = DEFAULT_GIVE_UP_AFTER_SECONDS
    ) -> None:
        self._store = store
        self._draining = draining
        self._outage_seconds = outage_seconds
        self._event_messages = EventMessages()
        self._live_tails = LiveTails(store, outage_seconds=outage_seconds)

    @translate_errors
    async def CreateStream(  # noqa: N802  (the gRPC method name)
        self, request: sluice_pb2.CreateStreamRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> sluice_pb2.StreamDescription:
        stream_type = (
            StreamType.EPHEMERAL if request.type == sluice_pb2.STREAM_TYPE_EPHEMERAL else StreamType.PERSISTENT
        )
        values: dict[str, object] = {
            "name": request.name,
            "type": stream_type,
            "partitions": request.partitions or 1,
            "delivery": DeliverySemantics.QUEUE
            if request.delivery == sluice_pb2.DELIVERY_SEMANTICS_QUEUE
            else DeliverySemantics.BROADCAST,
        }
        if request.max_attempts:
            values["max_attempts"] = request.max_attempts
        config = StreamConfig(**values)  # type: ignore[arg-type]  # (validated: InvalidArgumentError)
        return stream_description(await self._store.create_stream(config))

    @translate_errors
    async def Append(  # noqa: N802  (the gRPC method name)
        self, request: sluice_pb2.AppendRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> sluice_pb2.AppendResponse:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            # The caller has given up (its client may not have noticed yet): nothing is stored for it.
            message = "the call's deadline passed before the append started: nothing stored"
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, message)
        result = await self._store.append(
            request.stream_name,
            events_data_from_messages(request.events),
            expected_offset=expected_offset_from_request(request),
            correlation_id=correlation_id_of(context, request.correlation_id),
            partition_key=request.partition_key or None,
            partition=request.partition if request.HasField("partition") else None,
        )
        return sluice_pb2.AppendResponse(
            offsets=result.offsets, partitions=result.partitions, deduplicated=result.deduplicated
        )

    @translate_errors
    async def Read(  # type: ignore[override]  # noqa: N802  (context.write style)
        self, request: sluice_pb2.ReadRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await self._draining.run_stream(self._read(request, context), context)

    async def _read(self, request: sluice_pb2.ReadRequest, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        start = request.WhichOneof("start")
        events = self._store.read_stream(
            request.stream_name,
            from_offset=checked_offset(request.from_offset, field="from_offset") if start == "from_offset" else None,
            from_time=datetime_from_timestamp(request.from_time, field="from_time") if start == "from_time" else None,
            direction=direction_from_message(request.direction),
            limit=checked_offset(request.limit, field="limit") or None,
            partition=request.partition,
        )
        batch: list[sluice_pb2.RecordedEvent] = []
        async for event in events:
            batch.append(recorded_event_message(event))
            if len(batch) == READ_BATCH_EVENTS:
                await context.write(sluice_pb2.ReadResponse(events=batch))
                batch = []
        if batch:
            await context.write(sluice_pb2.ReadResponse(events=batch))

    @translate_errors
    async def Subscribe(  # type: ignore[override]  # noqa: N802  (context.write style)
        self, request: sluice_pb2.SubscribeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await self._draining.run_stream(self._subscribe(request, context), context)

    async def _subscribe(
        self, request: sluice_pb2.SubscribeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        interval = DEFAULT_CHECKPOINT_INTERVAL
        if request.HasField("checkpoint_interval"):
            interval = max(
                timedelta_from_duration(request.checkpoint_interval, field="checkpoint_interval"),
                MINIMUM_CHECKPOINT_INTERVAL,
            )
        from_offset = checked_offset(request.from_offset, field="from_offset")
        info = await self._store.get_stream(request.stream_name)
        _check_subscribable(info, request.partition)
        head = info.partition_heads[request.partition].head
        buffer = SubscriptionBuffer()
        pump = asyncio.create_task(
            self._pump(request, from_offset, buffer), name=f"sluice-grpc-subscribe-{request.stream_name}"
        )
        try:
            await send_subscription(
                context,
                buffer=buffer,
                pump=pump,
                messages=self._event_messages,
                next_offset=from_offset,
                head=head,
                checkpoint_seconds=interval.total_seconds(),
            )
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _pump(
        self,
        request: sluice_pb2.SubscribeRequest,
        from_offset: int,
        buffer: SubscriptionBuffer,
    ) -> None:
        """Move the store's events into the buffer: read on its own up to the current end, then take
        new events from the partition's live tail (sluice.rpc.live_tails), reading on its own again
        whenever the tail is ahead or the client fell behind. A database outage does not end the call:
        the pump waits until the database answers again and reads on from the next offset (the call
        ends with UNAVAILABLE only if the outage lasts longer than the retry allows)."""
        name, partition = request.stream_name, request.partition
        retry = OutageRetry(
            f"subscription to {name!r} partition {partition}", give_up_after_seconds=self._outage_seconds
        )
        position = from_offset
        while True:
            try:
                async for event in self._store.read_stream(name, from_offset=position, partition=partition):
                    await buffer.put(event)
                    position = event.offset + 1
            except TRANSIENT_ERRORS as error:
                await retry.until_reachable(lambda: self._store.get_stream(name), error)
                continue
            attachment = self._live_tails.attach(name, partition, buffer, position)
            if attachment is None:
                continue  # the tail has handed out events past this position: read them first
            try:
                detached = await attachment.ended  # raises the tail's error if it failed
            finally:
                self._live_tails.detach(attachment)
            if not detached:
                return  # the store closed
            position = attachment.next_offset


class _CapturedHandlers:
    """Stands in for a server while the generated code registers a service: keeps its method handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, generic_handlers: object) -> None:
        pass

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, Any]) -> None:
        self.handlers = dict(handlers)


def add_streams_service(service: StreamsService, server: grpc.aio.Server) -> None:
    """Register the Streams service as the generated code does, except that Subscribe's responses may be
    bytes encoded beforehand (one encoding of an event for every call sending it,
    sluice.rpc.subscription_sending), which its serializer passes through."""
    captured = _CapturedHandlers()
    sluice_pb2_grpc.add_StreamsServicer_to_server(service, cast(grpc.aio.Server, captured))  # (what it calls)
    subscribe = captured.handlers["Subscribe"]
    captured.handlers["Subscribe"] = grpc.unary_stream_rpc_method_handler(
        service.Subscribe,
        request_deserializer=subscribe.request_deserializer,
        response_serializer=subscribe_response_bytes,
    )
    service_name = sluice_pb2.DESCRIPTOR.services_by_name["Streams"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service_name, captured.handlers),))
    server.add_registered_method_handlers(service_name, captured.handlers)


def _check_subscribable(info: StreamInfo, partition: int) -> None:
    """Refuse a queue or a partition the stream does not have before anything is sent, so that a
    refused call never reports ``caught_up`` first."""
    check_integer(partition, "partition", maximum=MAX_INT32)
    if info.type is not StreamType.PERSISTENT:
        raise StreamTypeError(f"{info.name!r} is a queue (an ephemeral stream): dequeue from it, do not read it")
    if partition >= info.partitions:
        raise InvalidArgumentError(
            f"stream {info.name!r} has {info.partitions} partition(s); partition {partition} does not exist"
        )
