"""One store subscription per stream partition for every gRPC Subscribe call that has caught up.

A call catches up on its own (``read_stream`` from its offset to the current end) and then attaches
to its partition's LiveTail: one ``store.subscribe`` that hands each new event to the buffer of every
attached call. One append to a stream with 500 subscribers then costs one wake-up, one read and 500
appends to buffers, instead of 500 subscriptions each waking, sharing a read and handing over through
its own task before the first write could start (the profile is in docs/subscriptions.md).

Nothing is lost or repeated at the hand-over. A call attaches only if the tail has not yet handed out
the call's next offset (``attach`` refuses otherwise, and the call reads on its own again, further this
time); it gets from the tail only events at or after that offset. A call whose buffer is full (its
client reads slowly) is detached rather than stall the others, and reads on its own from where it got
to, with the buffer's backpressure, until it catches up again.

The tail outlives database outages as each call did (sluice.rpc.database_outages): it waits until the
database answers and subscribes again from its next offset. If the outage outlasts the retry, every
attached call ends with that error, as each would have on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from sluice.core.events import RecordedEvent
from sluice.rpc.database_outages import DEFAULT_GIVE_UP_AFTER_SECONDS, TRANSIENT_ERRORS, OutageRetry
from sluice.rpc.subscription_sending import SubscriptionBuffer
from sluice.store import EventStore


class Attachment:
    """One call's place on a tail: the events it wants from the tail on, and how its attachment ended."""

    def __init__(self, tail: LiveTail, buffer: SubscriptionBuffer, next_offset: int) -> None:
        self.tail = tail
        self.buffer = buffer
        self.next_offset = next_offset
        """The next offset this call needs (the tail's events below it are skipped)."""
        self.ended: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        """True: detached (buffer full), read on your own from ``next_offset``; False: the tail ended
        (the store closed); an exception: the tail failed."""

    def offer(self, event: RecordedEvent) -> bool:
        if event.offset < self.next_offset:
            return True
        if not self.buffer.offer(event):
            return False
        self.next_offset = event.offset + 1
        return True


class LiveTail:
    """The store's subscription of one stream partition, shared by the calls attached to it."""

    def __init__(
        self, store: EventStore, stream_name: str, partition: int, next_offset: int, *, outage_seconds: float
    ) -> None:
        self._store = store
        self.stream_name = stream_name
        self.partition = partition
        self.next_offset = next_offset
        """The offset of the next event the tail will hand out."""
        self._outage_seconds = outage_seconds
        self._attached: dict[SubscriptionBuffer, Attachment] = {}
        self.task = asyncio.create_task(self._run(), name=f"sluice-grpc-live-tail-{stream_name}-{partition}")
        self.task.add_done_callback(self._ended)

    @property
    def attached(self) -> int:
        return len(self._attached)

    def attach(self, buffer: SubscriptionBuffer, next_offset: int) -> Attachment | None:
        """Attach a call that has everything before ``next_offset``; None if the tail has already handed
        out events from there (or has ended): the call reads on its own further, then tries again."""
        if self.task.done() or next_offset < self.next_offset:
            return None
        attachment = self._attached[buffer] = Attachment(self, buffer, next_offset)
        return attachment

    def detach(self, buffer: SubscriptionBuffer) -> None:
        self._attached.pop(buffer, None)

    async def _run(self) -> None:
        name, partition = self.stream_name, self.partition
        retry = OutageRetry(
            f"subscription to {name!r} partition {partition}", give_up_after_seconds=self._outage_seconds
        )
        while True:
            try:
                async for event in self._store.subscribe(name, from_offset=self.next_offset, partition=partition):
                    self.next_offset = event.offset + 1
                    self._hand_out(event)
                return
            except TRANSIENT_ERRORS as error:
                await retry.until_reachable(lambda: self._store.get_stream(name), error)

    def _hand_out(self, event: RecordedEvent) -> None:
        full = [buffer for buffer, attachment in self._attached.items() if not attachment.offer(event)]
        for buffer in full:
            attachment = self._attached.pop(buffer)
            if not attachment.ended.done():
                attachment.ended.set_result(True)

    def _ended(self, task: asyncio.Task[None]) -> None:
        attachments, self._attached = list(self._attached.values()), {}
        failure = None if task.cancelled() else task.exception()
        for attachment in attachments:
            if attachment.ended.done():
                continue
            if failure is not None:
                attachment.ended.set_exception(failure)
            else:
                attachment.ended.set_result(False)


class LiveTails:
    """The tails of one server, by stream partition; a tail stops when its last call detaches."""

    def __init__(self, store: EventStore, *, outage_seconds: float = DEFAULT_GIVE_UP_AFTER_SECONDS) -> None:
        self._store = store
        self._outage_seconds = outage_seconds
        self._tails: dict[Hashable, LiveTail] = {}

    def attach(
        self, stream_name: str, partition: int, buffer: SubscriptionBuffer, next_offset: int
    ) -> Attachment | None:
        """Attach to the partition's tail (starting one at ``next_offset`` if none runs); None: read further first."""
        key = (stream_name, partition)
        tail = self._tails.get(key)
        if tail is None or tail.task.done():
            tail = self._tails[key] = LiveTail(
                self._store, stream_name, partition, next_offset, outage_seconds=self._outage_seconds
            )
        return tail.attach(buffer, next_offset)

    def detach(self, attachment: Attachment) -> None:
        """Take a call off the tail it attached to; stop that tail if no call is left on it."""
        tail = attachment.tail
        tail.detach(attachment.buffer)
        if tail.attached == 0:
            key = (tail.stream_name, tail.partition)
            if self._tails.get(key) is tail:
                del self._tails[key]
            tail.task.cancel()
