"""What the in-memory stream log and queues share: creating a stream and finding the one an operation is on
(auto-creating it for a write, refusing a deleted, archived or wrong-typed one).

``MemoryStreamLog`` and ``MemoryQueues`` are each given the one ``MemoryStreamCatalog`` of their store, so
an enqueue can auto-create a queue under the same rules as an append.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sluice.core.errors import (
    StreamAlreadyExistsError,
    StreamArchivedError,
    StreamDeletedError,
    StreamNotFoundError,
    StreamTypeError,
)
from sluice.core.lifecycle import AUTO_CREATE_ACTOR
from sluice.core.options import StoreOptions
from sluice.core.streams import StreamConfig, StreamType, same_shape, shape_description
from sluice.storage.memory.state import MemoryPartition, MemoryState, MemoryStream


def utc_now() -> datetime:
    """The time the in-memory backend stamps on what it stores."""
    return datetime.now(UTC)


class MemoryStreamCatalog:
    """The streams of one in-memory store by name: create one, or find the one an operation is on."""

    def __init__(self, state: MemoryState, options: StoreOptions) -> None:
        self._state = state
        self._options = options
        self._serials = itertools.count(1)

    def create(self, config: StreamConfig, actor: str | None) -> MemoryStream:
        """Create the stream, or find it already there in the same shape."""
        existing = self._state.streams.get(config.name)
        if existing is not None:
            if existing.deleted_at is not None:
                raise StreamDeletedError(config.name, "restore it or purge it before creating it again")
            if not same_shape(existing.config, config):
                raise StreamAlreadyExistsError(config.name, shape_description(existing.config))
            return existing
        stream = MemoryStream(
            next(self._serials),
            config,
            utc_now(),
            [MemoryPartition() for _ in range(config.partitions)],
            created_by=actor,
        )
        self._state.streams[config.name] = stream
        return stream

    def stream(self, name: str, expected_type: StreamType, *, create: bool) -> MemoryStream:
        """The stream ``name`` of ``expected_type``; ``create`` (appends and enqueues, the writes)
        auto-creates it as the rules say and refuses an archived one."""
        stream = self._state.streams.get(name)
        if stream is None:
            config = self._options.auto_create_config(name, expected_type) if create else None
            if config is None:
                raise StreamNotFoundError(name)
            stream = self.create(config, AUTO_CREATE_ACTOR)
        if stream.deleted_at is not None:
            raise StreamDeletedError(name)
        if create and stream.archived_at is not None:
            raise StreamArchivedError(name)
        if stream.config.type is not expected_type:
            if expected_type is StreamType.PERSISTENT:
                raise StreamTypeError(f"{name!r} is a queue (an ephemeral stream): use enqueue, not append")
            raise StreamTypeError(f"{name!r} is a persistent stream: use append and read, not queue operations")
        return stream
