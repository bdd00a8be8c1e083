"""Where replayed batches go: a handler (an async callable) or another stream.

A stream target appends each batch with deterministic ids (``identity.replayed_event_id``) to the
partition of the same number (modulo the target's partitions), so order per source partition is
kept, and a batch appended again after a crash is recognised as a retry and stored once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sluice.core.errors import DuplicateEventIdError, StreamNotFoundError
from sluice.core.events import RecordedEvent
from sluice.core.streams import StreamConfig
from sluice.services.replay.identity import replayed_event
from sluice.store import MAX_BATCH_EVENTS, EventStore

ReplayHandler = Callable[[Sequence[RecordedEvent]], Awaitable[None]]
"""A handler target: called with each batch (consecutive events of one partition, in order). It
signals failure by raising; the replay then fails and, run again, resumes with that batch."""


class BatchTarget(Protocol):
    """Something that takes replayed batches."""

    async def deliver(self, events: Sequence[RecordedEvent]) -> None: ...


class HandlerTarget:
    """Batches to an async callable."""

    def __init__(self, handler: ReplayHandler) -> None:
        self._handler = handler

    async def deliver(self, events: Sequence[RecordedEvent]) -> None:
        await self._handler(events)


class StreamTarget:
    """Batches appended to another stream, idempotently."""

    def __init__(self, store: EventStore, *, replay_name: str, stream_name: str, partitions: int) -> None:
        self._store = store
        self._replay_name = replay_name
        self._stream_name = stream_name
        self._partitions = partitions

    @classmethod
    async def open(
        cls, store: EventStore, *, replay_name: str, stream_name: str, source_partitions: int
    ) -> StreamTarget:
        """The target stream, created with the source's partition count when it does not exist."""
        try:
            info = await store.get_stream(stream_name)
        except StreamNotFoundError:
            info = await store.create_stream(StreamConfig(name=stream_name, partitions=source_partitions))
        return cls(store, replay_name=replay_name, stream_name=stream_name, partitions=info.partitions)

    async def deliver(self, events: Sequence[RecordedEvent]) -> None:
        for start in range(0, len(events), MAX_BATCH_EVENTS):
            chunk = events[start : start + MAX_BATCH_EVENTS]
            copies = [replayed_event(self._replay_name, event) for event in chunk]
            partition = chunk[0].partition % self._partitions
            try:
                await self._store.append(self._stream_name, copies, partition=partition)
            except DuplicateEventIdError:
                # Part of this chunk was appended by an earlier run with other batch boundaries
                # (its batch size or rate limit changed): append event by event, each a retry or new.
                for copy in copies:
                    await self._store.append(self._stream_name, copy, partition=partition)
