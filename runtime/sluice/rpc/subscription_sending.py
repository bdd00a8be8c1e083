"""How a gRPC Subscribe call sends: a pump task hands the store's events to a SubscriptionBuffer, and
the call's own task sends what is buffered as one batch, a caught-up marker, and checkpoints.

One append to a stream with 500 subscribers runs the sending side 500 times in one event loop, one
after the other, so the last subscriber waits for all the others: what each does per event is what
fan-out latency is made of (issue 18; the profile is in docs/subscriptions.md). So the sender:

- waits on one bare future that the pump resolves (and one timer for its next checkpoint), not a
  new task per event raced against the pump with ``asyncio.wait``;
- sends everything already buffered as one message;
- encodes each stored event once for every call sending it, and hands gRPC those bytes
  (EventMessages; Subscribe's response serializer passes bytes through, see
  sluice.rpc.streams_service.add_streams_service): a batch is the concatenation of its events'
  encoded one-event responses, which protobuf parses as one response whose batch holds them all, in
  order (concatenated messages merge; repeated fields append). No message is built or serialized per
  call;
- sends a checkpoint only as a keep-alive, when nothing else was sent for a while: a batch already
  tells the client the offset it would resume from. A checkpoint an interval after each move added
  500 writes a second behind a fan-out, and an append landing among them waited (measured on a quiet
  machine: p99 57-60 ms without them against 71-102 ms with them, server CPU per append 35-39 against
  44-50 ms; docs/subscriptions.md).

The buffer's bound is the backpressure: a client that stops reading stalls the sender's writes
(HTTP/2 flow control), the buffer fills, and the pump stops reading the store.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Sequence
from typing import Any

import grpc

from sluice.core.events import RecordedEvent
from sluice.rpc.conversions import recorded_event_message
from sluice.rpc.v1 import sluice_pb2

SUBSCRIBE_BATCH_EVENTS = 500
"""Most events in one Subscribe message."""
SUBSCRIBE_BUFFER_EVENTS = 1000
"""Most events read from the store and not sent yet, per call."""
IDLE_CHECKPOINT_SECONDS = 30.0
"""How long a subscription that was sent nothing waits for a checkpoint (a keep-alive through proxies)."""
EVENT_MESSAGES_KEPT = 1024
"""Wire forms of recently sent events kept for other subscriptions sending the same events."""


class SubscriptionBuffer:
    """Events read for one call and not sent yet: the pump puts, the sender takes. Made in the event
    loop that uses it (it keeps the loop: ``asyncio.get_running_loop`` costs a getpid() system call per
    call on Python 3.11, measurable when 500 senders wait once per event)."""

    def __init__(self, capacity: int | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._events: collections.deque[RecordedEvent] = collections.deque()
        self._capacity = SUBSCRIBE_BUFFER_EVENTS if capacity is None else capacity
        self._sender_waiting: asyncio.Future[None] | None = None
        self._pump_waiting: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._events)

    async def put(self, event: RecordedEvent) -> None:
        """Buffer one event, waiting while the buffer is full; wakes the sender."""
        while len(self._events) >= self._capacity:
            self._pump_waiting = self._loop.create_future()
            try:
                await self._pump_waiting
            finally:
                self._pump_waiting = None
        self._events.append(event)
        self.wake()

    def offer(self, event: RecordedEvent) -> bool:
        """Buffer one event unless the buffer is full (False then); wakes the sender."""
        if len(self._events) >= self._capacity:
            return False
        self._events.append(event)
        self.wake()
        return True

    def take(self, limit: int) -> list[RecordedEvent]:
        """Up to ``limit`` buffered events, oldest first (none if nothing is buffered)."""
        events = self._events
        taken = [events.popleft() for _ in range(min(limit, len(events)))]
        if taken:
            _resolve(self._pump_waiting)
        return taken

    async def wait(self, deadline: float) -> None:
        """Return once an event is buffered, ``wake()`` is called, or the loop's clock reaches ``deadline``."""
        if self._events:
            return
        waiting = self._sender_waiting = self._loop.create_future()
        timer = self._loop.call_at(deadline, _resolve, waiting)
        try:
            await waiting
        finally:
            timer.cancel()
            self._sender_waiting = None

    def wake(self) -> None:
        """End the sender's wait (an event was buffered, or the pump ended)."""
        _resolve(self._sender_waiting)


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class EventMessages:
    """The wire form of recently sent events, shared by every call sending the same stored event:
    the RecordedEvent message, and the encoded SubscribeResponse carrying that event alone.

    An entry is the event at one place (stream, partition, offset) with one event id, so a stream
    deleted and created again never gets an older stream's event from here. Entries are never changed
    once built."""

    def __init__(self, capacity: int = EVENT_MESSAGES_KEPT) -> None:
        self._entries: dict[tuple[str, int, int, uuid.UUID], tuple[sluice_pb2.RecordedEvent, bytes]] = {}
        self._capacity = capacity
        self.built = 0
        """How many entries were built (the rest were shared; for tests)."""

    def message(self, event: RecordedEvent) -> sluice_pb2.RecordedEvent:
        return self._entry(event)[0]

    def encoded(self, event: RecordedEvent) -> bytes:
        """The encoded SubscribeResponse whose batch is this event alone."""
        return self._entry(event)[1]

    def batch(self, events: Sequence[RecordedEvent], *, caught_up: bool) -> bytes:
        """The encoded SubscribeResponse of a batch of ``events`` (flagged ``caught_up`` if so): the
        concatenation of each event's own response, which parses as one batch of all of them, in order."""
        parts = [self._entry(event)[1] for event in events]
        if caught_up:
            parts.append(_CAUGHT_UP_BATCH)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _entry(self, event: RecordedEvent) -> tuple[sluice_pb2.RecordedEvent, bytes]:
        key = (event.stream_name, event.partition, event.offset, event.event_id)
        entry = self._entries.get(key)
        if entry is None:
            message = recorded_event_message(event)
            response = sluice_pb2.SubscribeResponse(events=sluice_pb2.EventBatch(events=[message]))
            entry = (message, response.SerializeToString())
            self.built += 1
            if len(self._entries) >= self._capacity:
                del self._entries[next(iter(self._entries))]  # the oldest entry
            self._entries[key] = entry
        return entry


_CAUGHT_UP_BATCH = sluice_pb2.SubscribeResponse(events=sluice_pb2.EventBatch(caught_up=True)).SerializeToString()
"""Appended to a batch's encoding, sets its ``caught_up`` flag (the batch's events are unchanged)."""


def subscribe_response_bytes(response: bytes | sluice_pb2.SubscribeResponse) -> bytes:
    """Subscribe's response serializer: bytes encoded beforehand pass through, messages are serialized."""
    return response if isinstance(response, bytes) else response.SerializeToString()


async def send_subscription(
    context: grpc.aio.ServicerContext[Any, Any],
    *,
    buffer: SubscriptionBuffer,
    pump: asyncio.Task[None],
    messages: EventMessages,
    next_offset: int,
    head: int,
    checkpoint_seconds: float,
) -> None:
    """Send batches as they come, a caught-up marker once the head seen at the start is passed, and a
    checkpoint only when nothing else was sent for IDLE_CHECKPOINT_SECONDS (or ``checkpoint_seconds`` if
    longer), as a keep-alive: every batch already tells the client the offset it would resume from (the
    client keeps the larger of its last event's and the last checkpoint's). Events go out as bytes
    (EventMessages.batch): the call's response serializer must pass bytes through
    (``subscribe_response_bytes``). Returns when the pump ends, raising its error if it failed."""
    loop = asyncio.get_running_loop()
    caught_up = next_offset >= head
    if caught_up:
        await context.write(sluice_pb2.SubscribeResponse(caught_up=sluice_pb2.CaughtUp(next_offset=next_offset)))
    last_sent = loop.time()
    pump.add_done_callback(lambda _: buffer.wake())
    while True:
        keep_alive_at = last_sent + max(IDLE_CHECKPOINT_SECONDS, checkpoint_seconds)
        if not pump.done():
            await buffer.wait(keep_alive_at)
        events = buffer.take(SUBSCRIBE_BATCH_EVENTS)
        if events:
            next_offset = events[-1].offset + 1
            reaches_head = not caught_up and next_offset >= head
            await context.write(messages.batch(events, caught_up=reaches_head))
            if reaches_head:
                caught_up = True  # (the batch says so, for clients that hand out its events one by one)
                await context.write(
                    sluice_pb2.SubscribeResponse(caught_up=sluice_pb2.CaughtUp(next_offset=next_offset))
                )
            last_sent = loop.time()
        elif pump.done():
            pump.result()  # the subscription failed: raise its error
            return
        elif loop.time() >= keep_alive_at:
            await context.write(sluice_pb2.SubscribeResponse(checkpoint=sluice_pb2.Checkpoint(next_offset=next_offset)))
            last_sent = loop.time()
