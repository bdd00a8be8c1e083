"""``SluiceClient``: the typed async Python client of the Sluice gRPC API.

    async with await SluiceClient.connect("localhost:50051", token="...") as client:
        await client.append("orders", [OrderPlaced(order_id="o-1")], correlation_id="request-42")
        async for event in client.read("orders"):
            print(event.offset, event.data)

Errors are the library's own (``sluice.ConcurrencyError``, ``sluice.StaleReceiptError``, ...);
failures of the transport raise ``sluice.core.errors.RemoteCallError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from sluice.client.group_consumption import RemoteGroupConsumption
from sluice.client.outgoing import event_messages
from sluice.client.queue_receiver import QueueReceiver
from sluice.client.received import ReceivedEvent
from sluice.client.remote_errors import error_from_rpc
from sluice.client.settings import ClientTls, call_metadata
from sluice.client.subscription import Subscription
from sluice.core.errors import InvalidArgumentError
from sluice.core.event_types import EventTypeRegistry, default_registry
from sluice.core.events import AppendResult, Direction, ExpectedOffset
from sluice.core.messages import EnqueueResult
from sluice.core.streams import DeliverySemantics, StreamType
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store.values.consumer_group_options import StartFrom, StartPosition

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_RECONNECT_FOR = timedelta(minutes=1)

_EXPECTED_STATES = {
    ExpectedOffset.ANY: sluice_pb2.EXPECTED_STATE_ANY,
    ExpectedOffset.NO_STREAM: sluice_pb2.EXPECTED_STATE_NO_STREAM,
    ExpectedOffset.STREAM_EXISTS: sluice_pb2.EXPECTED_STATE_STREAM_EXISTS,
}
_START_FROM = {
    StartFrom.EARLIEST: sluice_pb2.START_FROM_EARLIEST,
    StartFrom.LATEST: sluice_pb2.START_FROM_LATEST,
    StartFrom.OFFSET: sluice_pb2.START_FROM_OFFSET,
    StartFrom.TIME: sluice_pb2.START_FROM_TIME,
}


def _duration(value: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value)
    return duration


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(value)
    return timestamp


class SluiceClient:
    """One channel to a Sluice server; every method is a call on it. Close it when done."""

    def __init__(
        self, channel: grpc.aio.Channel, *, token: str | None = None, registry: EventTypeRegistry | None = None
    ) -> None:
        self._channel = channel
        self._token = token
        self.registry = registry or default_registry
        self._streams = sluice_pb2_grpc.StreamsStub(channel)
        self._groups = sluice_pb2_grpc.PersistentSubscriptionsStub(channel)
        self._queues = sluice_pb2_grpc.QueuesStub(channel)

    @classmethod
    async def connect(
        cls,
        target: str,
        *,
        token: str | None = None,
        tls: ClientTls | None = None,
        registry: EventTypeRegistry | None = None,
    ) -> SluiceClient:
        """A client for ``host:port`` (the channel connects lazily, and reconnects by itself)."""
        options: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls is not None:
            options.extend(tls.channel_options())
            channel = grpc.aio.secure_channel(target, tls.channel_credentials(), options=options)
        else:
            channel = grpc.aio.insecure_channel(target, options=options)
        return cls(channel, token=token, registry=registry)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    def _metadata(self, correlation_id: str | None = None) -> tuple[tuple[str, str], ...]:
        return call_metadata(self._token, correlation_id)

    # ----------------------------------------------------------------- streams

    async def create_stream(
        self,
        name: str,
        *,
        type: StreamType = StreamType.PERSISTENT,
        partitions: int = 1,
        max_attempts: int | None = None,
        delivery: DeliverySemantics = DeliverySemantics.BROADCAST,
        deadline_seconds: float | None = None,
    ) -> sluice_pb2.StreamDescription:
        """Create a stream or queue (a no-op when it exists with the same shape)."""
        request = sluice_pb2.CreateStreamRequest(
            name=name,
            type=sluice_pb2.STREAM_TYPE_EPHEMERAL
            if type is StreamType.EPHEMERAL
            else sluice_pb2.STREAM_TYPE_PERSISTENT,
            partitions=partitions,
            max_attempts=max_attempts or 0,
            delivery=sluice_pb2.DELIVERY_SEMANTICS_QUEUE
            if delivery is DeliverySemantics.QUEUE
            else sluice_pb2.DELIVERY_SEMANTICS_BROADCAST,
        )
        try:
            description: sluice_pb2.StreamDescription = await self._streams.CreateStream(
                request, metadata=self._metadata(), timeout=deadline_seconds
            )
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error) from error
        return description

    async def append(
        self,
        stream_name: str,
        events: Sequence[object] | object,
        *,
        expected_offset: int | ExpectedOffset | None = None,
        correlation_id: str | None = None,
        partition_key: str | None = None,
        partition: int | None = None,
        deadline_seconds: float | None = None,
    ) -> AppendResult:
        """Append events atomically, as ``EventStore.append`` does."""
        request = sluice_pb2.AppendRequest(
            stream_name=stream_name,
            events=event_messages(events, self.registry),
            partition_key=partition_key or "",
            correlation_id=correlation_id or "",
        )
        if isinstance(expected_offset, ExpectedOffset):
            request.expected_state = _EXPECTED_STATES[expected_offset]
        elif expected_offset is not None:
            if expected_offset < 0:
                raise InvalidArgumentError(f"expected_offset must be >= 0, got {expected_offset}")
            request.expected_offset = expected_offset
        if partition is not None:
            request.partition = partition
        try:
            response: sluice_pb2.AppendResponse = await self._streams.Append(
                request, metadata=self._metadata(), timeout=deadline_seconds
            )
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error) from error
        return AppendResult(
            stream_name=stream_name,
            partitions=tuple(response.partitions),
            offsets=tuple(response.offsets),
            deduplicated=response.deduplicated,
        )

    async def read(
        self,
        stream_name: str,
        *,
        from_offset: int | None = None,
        from_time: datetime | None = None,
        direction: Direction = Direction.FORWARDS,
        limit: int | None = None,
        partition: int = 0,
        deadline_seconds: float | None = None,
    ) -> AsyncIterator[ReceivedEvent]:
        """Read one partition in offset order, as ``EventStore.read_stream`` does."""
        request = sluice_pb2.ReadRequest(
            stream_name=stream_name,
            partition=partition,
            direction=sluice_pb2.DIRECTION_BACKWARDS
            if direction is Direction.BACKWARDS
            else sluice_pb2.DIRECTION_FORWARDS,
            limit=limit or 0,
        )
        if from_time is not None:
            request.from_time.CopyFrom(_timestamp(from_time))
        elif from_offset is not None:
            request.from_offset = from_offset
        call = self._streams.Read(request, metadata=self._metadata(), timeout=deadline_seconds)
        try:
            async for response in call:
                for message in response.events:
                    yield ReceivedEvent.from_message(message)
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error) from error
        finally:
            call.cancel()

    def subscribe(
        self,
        stream_name: str,
        *,
        from_offset: int = 0,
        partition: int = 0,
        checkpoint_interval: timedelta = timedelta(seconds=1),
        reconnect_for: timedelta | None = DEFAULT_RECONNECT_FOR,
    ) -> Subscription:
        """Catch up from ``from_offset``, then live. When the server goes away the subscription
        reconnects (for up to ``reconnect_for``; None: never) and resumes from its checkpoint."""
        request = sluice_pb2.SubscribeRequest(
            stream_name=stream_name,
            partition=partition,
            from_offset=from_offset,
            checkpoint_interval=_duration(checkpoint_interval),
        )
        metadata = self._metadata()
        return Subscription(
            lambda subscribe_request: self._streams.Subscribe(subscribe_request, metadata=metadata),
            request,
            reconnect_for=reconnect_for,
        )

    # ----------------------------------------------------------------- consumer groups

    async def consume(
        self,
        stream_name: str,
        *,
        group_id: str,
        consumer_id: str,
        prefetch: int = 100,
        start_position: StartPosition | None = None,
        session_timeout: timedelta | None = None,
        batch_size: int | None = None,
        reconnect_for: timedelta | None = DEFAULT_RECONNECT_FOR,
    ) -> RemoteGroupConsumption:
        """Join ``group_id`` as ``consumer_id``; iterate over the events of the partitions this
        member owns and ``await event.commit()`` after processing each. At most ``prefetch``
        events are on their way to this client or waiting in it at any time. When the server (or
        its database, for longer than the server waits) goes away, the member rejoins on a new call
        for up to ``reconnect_for`` (None: never); uncommitted events are delivered again, and
        commits of events delivered before are fenced."""
        if not 0 < prefetch <= 10_000:
            raise InvalidArgumentError(f"prefetch must be 1 to 10000, got {prefetch}")
        start = start_position or StartPosition()
        opening = sluice_pb2.ConsumeOpen(
            stream_name=stream_name,
            group_id=group_id,
            consumer_id=consumer_id,
            initial_credits=prefetch,
            start_from=_START_FROM[start.start_from],
            start_offset=start.offset or 0,
            batch_size=batch_size or 0,
        )
        if start.time is not None:
            opening.start_time.CopyFrom(_timestamp(start.time))
        if session_timeout is not None:
            opening.session_timeout.CopyFrom(_duration(session_timeout))
        metadata = self._metadata()
        consumption = RemoteGroupConsumption(
            lambda: self._groups.Consume(metadata=metadata), opening, reconnect_for=reconnect_for
        )
        try:
            await consumption.open()
        except BaseException:
            await consumption.aclose()
            raise
        return consumption

    # ----------------------------------------------------------------- queues

    async def enqueue(
        self,
        queue_name: str,
        messages: Sequence[object] | object,
        *,
        delay: timedelta | None = None,
        dedupe_keys: Sequence[str | None] | None = None,
        correlation_id: str | None = None,
        deadline_seconds: float | None = None,
    ) -> list[EnqueueResult]:
        """Put one message (or a list) on a queue, in one transaction."""
        request = sluice_pb2.EnqueueRequest(
            queue_name=queue_name,
            messages=event_messages(messages, self.registry),
            dedupe_keys=[key or "" for key in dedupe_keys or ()],
            correlation_id=correlation_id or "",
        )
        if delay is not None:
            request.delay.CopyFrom(_duration(delay))
        try:
            response: sluice_pb2.EnqueueResponse = await self._queues.Enqueue(
                request, metadata=self._metadata(), timeout=deadline_seconds
            )
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error) from error
        return [
            EnqueueResult(queue_name=queue_name, message_id=message_id, deduplicated=deduplicated)
            for message_id, deduplicated in zip(response.message_ids, response.deduplicated, strict=True)
        ]

    async def receive(
        self,
        queue_name: str,
        *,
        max_in_flight: int = 10,
        visibility_timeout: timedelta = timedelta(seconds=30),
        reconnect_for: timedelta | None = DEFAULT_RECONNECT_FOR,
    ) -> QueueReceiver:
        """Lease messages as they come, never more than ``max_in_flight`` unsettled at once. When the
        server goes away the receiver opens a new call for up to ``reconnect_for`` (None: never);
        messages already received keep their leases."""
        metadata = self._metadata()
        opening = sluice_pb2.ReceiveOpen(
            queue_name=queue_name, max_in_flight=max_in_flight, visibility_timeout=_duration(visibility_timeout)
        )
        receiver = QueueReceiver(lambda: self._queues.Receive(metadata=metadata), opening, reconnect_for=reconnect_for)
        try:
            await receiver.open()
        except BaseException:
            await receiver.aclose()
            raise
        return receiver
