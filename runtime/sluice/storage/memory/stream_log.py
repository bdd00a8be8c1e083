"""The in-memory stream log (the port's ``StreamLog``): streams, appends, partition reads and the global log
over ``MemoryState``.

Every operation runs without awaiting inside it, so on one event loop each is atomic, just as one
statement is on PostgreSQL. Payloads are stored encoded and decoded on read, so callers never share
mutable objects with the store.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sluice.core.compression import PLAIN_CONTENT_TYPES, plain_row
from sluice.core.errors import ConcurrencyError, DuplicateEventIdError
from sluice.core.events import AppendResult, Direction, EventRow, ExpectedOffset, GlobalPosition
from sluice.core.lifecycle import LifecycleAction, LifecycleChange
from sluice.core.options import StoreOptions
from sluice.core.partitioning import PartitionSpreader
from sluice.core.streams import StreamConfig, StreamInfo, StreamType
from sluice.core.validation import check_partition_key, check_prepared_events
from sluice.storage.memory.state import (
    GlobalEntry,
    MemoryPartition,
    MemoryState,
    StoredEvent,
    offset_at_time,
)
from sluice.storage.memory.stream_catalog import MemoryStreamCatalog, utc_now
from sluice.store import AppendRequest


class MemoryStreamLog:
    """Streams and their events in process memory (``StreamLog``)."""

    def __init__(self, state: MemoryState, options: StoreOptions, catalog: MemoryStreamCatalog) -> None:
        self._state = state
        self._options = options
        self._catalog = catalog
        self._spreader = PartitionSpreader()
        self._transactions = itertools.count(1)
        self._sequence = itertools.count(1)

    # ----------------------------------------------------------------- streams

    async def create_stream(self, config: StreamConfig, actor: str | None = None) -> StreamInfo:
        return self._catalog.create(config, actor).info()

    async def describe_stream(self, name: str) -> StreamInfo | None:
        stream = self._state.streams.get(name)
        return stream.info() if stream else None

    async def list_streams(self) -> list[StreamInfo]:
        return [self._state.streams[name].info() for name in sorted(self._state.streams)]

    async def delete_stream(self, name: str) -> bool:
        stream = self._state.streams.pop(name, None)
        if stream is None:
            return False
        self._state.global_log = [entry for entry in self._state.global_log if entry.stream is not stream]
        return True

    async def change_lifecycle(self, name: str, change: LifecycleChange) -> StreamInfo | None:
        stream = self._state.streams.get(name)
        if stream is None:
            return None
        now = utc_now()
        action = change.action
        if action is LifecycleAction.ARCHIVE and stream.deleted_at is None and stream.archived_at is None:
            stream.archived_at, stream.archived_by = now, change.actor
        elif action is LifecycleAction.UNARCHIVE and stream.deleted_at is None and stream.archived_at is not None:
            stream.archived_at, stream.archived_by = None, None
        elif action is LifecycleAction.SOFT_DELETE and stream.deleted_at is None:
            stream.deleted_at, stream.deleted_by = now, change.actor
        elif (
            action is LifecycleAction.RESTORE
            and stream.deleted_at is not None
            and stream.deleted_at >= now - change.grace_period
        ):
            stream.deleted_at, stream.deleted_by = None, None
        return stream.info()

    async def purge_deleted_streams(self, older_than: timedelta) -> list[str]:
        cutoff = utc_now() - older_than
        doomed = [
            name
            for name, stream in self._state.streams.items()
            if stream.deleted_at is not None and stream.deleted_at < cutoff
        ]
        for name in doomed:
            await self.delete_stream(name)
        return doomed

    async def set_partitions(self, name: str, partitions: int) -> StreamInfo:
        stream = self._catalog.stream(name, StreamType.PERSISTENT, create=False)
        stream.partitions.extend(MemoryPartition() for _ in range(partitions - len(stream.partitions)))
        stream.config = stream.config.model_copy(update={"partitions": partitions})
        return stream.info()

    # ----------------------------------------------------------------- appends

    async def append(self, request: AppendRequest) -> AppendResult:
        check_partition_key(request.partition_key)  # before a stream is auto-created
        check_prepared_events(
            request.events.schema_versions, request.events.metadata, limit=self._options.max_payload_bytes
        )
        stream = self._catalog.stream(request.stream_name, StreamType.PERSISTENT, create=True)
        known = [stream.event_ids.get(event_id) for event_id in request.events.event_ids]
        if all(known):
            return AppendResult(
                stream_name=request.stream_name,
                partitions=tuple(location[0] for location in known if location),
                offsets=tuple(location[1] for location in known if location),
                deduplicated=True,
            )
        if any(known):
            count = sum(1 for location in known if location)
            raise DuplicateEventIdError(
                f"{count} of the {len(known)} event ids in this batch are already in stream "
                f"{request.stream_name!r}: a retried batch must hold the same events as the original"
            )
        events = stream.config.compression_policy.apply(request.events)
        partition_number = request.route(stream.config.partitions, self._spreader)
        partition = stream.partitions[partition_number]
        head = len(partition.events)
        _check_expectation(request, partition_number, head)
        now = utc_now()
        timestamp = max(now, partition.last_appended_at) if partition.last_appended_at else now
        partition.last_appended_at = timestamp
        transaction = next(self._transactions)
        offsets = []
        for event, correlation_id in zip(events.events(), events.correlation_ids, strict=True):
            offset = len(partition.events)
            position = GlobalPosition(transaction, next(self._sequence))
            partition.events.append(StoredEvent(offset, event, correlation_id, timestamp, position))
            stream.event_ids[event.event_id] = (partition_number, offset)
            self._state.global_log.append(GlobalEntry(position, stream, partition_number, offset))
            offsets.append(offset)
        return AppendResult(
            stream_name=request.stream_name,
            partitions=(partition_number,) * len(offsets),
            offsets=tuple(offsets),
        )

    # ----------------------------------------------------------------- reads

    def _row(self, stored: StoredEvent) -> tuple[Any, ...]:
        """The event's row, its payload decompressed (capped at max_payload_bytes) if it was compressed."""
        prepared = stored.prepared
        if prepared.content_type not in PLAIN_CONTENT_TYPES:
            return plain_row(_stored_row(stored), limit=self._options.max_payload_bytes)
        return _stored_row(stored)

    async def read_page(
        self, stream_name: str, partition: int, start: int, direction: Direction, count: int
    ) -> Sequence[EventRow]:
        stream = self._state.streams.get(stream_name)
        if stream is None or stream.config.type is not StreamType.PERSISTENT:
            return []
        events = stream.partitions[partition].events
        if direction is Direction.FORWARDS:
            start = max(start, events.first_offset)  # as on PostgreSQL: the first events at or after start
            selected = events[start : start + count]
        else:
            end = min(start, len(events) - 1)
            selected = events[max(end - count + 1, 0) : end + 1][::-1]
        return [self._row(stored) for stored in selected]

    async def offset_at_time(self, stream_name: str, partition: int, at: datetime) -> int:
        return offset_at_time(self._catalog.stream(stream_name, StreamType.PERSISTENT, create=False), partition, at)

    async def read_all_page(self, after: GlobalPosition | None, count: int) -> Sequence[EventRow]:
        start = (
            0 if after is None else bisect.bisect_right(self._state.global_log, after, key=lambda entry: entry.position)
        )
        page: list[EventRow] = []
        for entry in self._state.global_log[start : start + count]:
            # Retention removes the entries of the events it prunes (MemoryState.forget_pruned).
            stored = entry.stream.partitions[entry.partition].events[entry.offset]
            page.append((*self._row(stored), entry.stream.config.name, entry.partition))
        return page


def _check_expectation(request: AppendRequest, partition: int, head: int) -> None:
    """Raise ConcurrencyError unless the partition's head is what the append expects."""
    expected = request.expected_offset
    if expected is ExpectedOffset.ANY:
        return
    if expected is ExpectedOffset.NO_STREAM:
        matches, description = head == 0, "no events yet"
    elif expected is ExpectedOffset.STREAM_EXISTS:
        matches, description = head > 0, "at least one event"
    else:
        assert isinstance(expected, int)
        matches, description = head == expected + 1, f"last offset {expected}"
    if not matches:
        raise ConcurrencyError(stream_name=request.stream_name, partition=partition, expected=description, head=head)


def _stored_row(stored: StoredEvent) -> tuple[Any, ...]:
    """The event's row as stored (its payload possibly compressed)."""
    prepared = stored.prepared
    return (
        stored.offset,
        prepared.event_id,
        prepared.event_type,
        prepared.schema_version,
        prepared.content_type,
        prepared.payload,
        prepared.metadata_json,
        stored.correlation_id,
        stored.timestamp,
        stored.global_position.transaction,
        stored.global_position.sequence,
    )
