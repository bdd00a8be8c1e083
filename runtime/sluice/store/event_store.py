"""The EventStore facade: the public API users hold, over the ``Backend`` one storage adapter hands out.

Public methods check their arguments and convert events here, once, record metrics and traces, and wake
readers; the backend's parts (``store/port.py``) receive only valid, prepared input. The behavioural
contract suite in ``tests/contract`` runs unchanged against every adapter.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from sluice.core.batches import PreparedBatch, check_prepared_batch, prepare_batch
from sluice.core.errors import (
    InvalidArgumentError,
    StreamDeletedError,
    StreamNotFoundError,
    StreamTypeError,
)
from sluice.core.event_types import EventTypeRegistry, default_registry
from sluice.core.events import AppendResult, Direction, ExpectedOffset, GlobalPosition, RecordedEvent, global_log_event
from sluice.core.lifecycle import LifecycleAction, LifecycleChange, validate_actor
from sluice.core.names import validate_stream_name
from sluice.core.options import StoreOptions
from sluice.core.shared_reads import SharedReads
from sluice.core.signals import ALL_STREAMS
from sluice.core.streams import StreamConfig, StreamInfo, StreamType
from sluice.core.validation import (
    MAX_INT32,
    MAX_INT64,
    check_duration,
    check_integer,
    check_offset,
)
from sluice.observability import metrics
from sluice.observability.tracing import append_span
from sluice.store.backend import Backend
from sluice.store.contracts.consumer_groups import ConsumerGroupReader
from sluice.store.limits import MAX_BATCH_EVENTS, MAX_PARTITIONS
from sluice.store.port import AppendRequest, BackendCheck
from sluice.store.queue_operations import QueueOperations
from sluice.store.stream_wait import wait_for_stream

ConsumerGroupsFactory = Callable[["EventStore"], ConsumerGroupReader]
"""Builds the consumer-group service of a store: ``EventStore.consumer_groups()`` calls it with the store.
The service sits above the store layer, so whoever builds a store hands it in (``sluice.connect`` passes
``sluice.services.consumers.reader.ConsumerGroupService``; a wrapping store passes the wrapped store's)."""


class EventStore(QueueOperations):
    """Persistent streams (append-only logs) and ephemeral streams (queues), stored by ``backend``.

    The queue operations (enqueue, dequeue, acknowledge, nack, extend, dead letters, depth) are written in
    ``queue_operations.py``; the rest of the public API is here."""

    def __init__(
        self,
        backend: Backend,
        options: StoreOptions,
        registry: EventTypeRegistry | None = None,
        *,
        consumer_groups_factory: ConsumerGroupsFactory,
    ) -> None:
        self.backend = backend
        """The storage this store was opened on; services reach their storage through it."""
        self.consumer_groups_factory = consumer_groups_factory
        """Builds what ``consumer_groups()`` returns (the consumer-group service, given by whoever built the store)."""
        self.options = options
        self.registry = registry or default_registry
        self._shared_reads = SharedReads()
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        """Release connections and stop background tasks. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self.backend.signals.fire_everything()
            await self.backend.close()

    async def check_backend(self) -> BackendCheck:
        """Whether the backend can serve now (readiness probes use it). Raises MigrationError when the
        schema is missing or at another version, an unavailable error (ConnectionLostError,
        DatabaseBusyError) when the database cannot be reached."""
        return await self.backend.check()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # ----------------------------------------------------------------- streams

    async def create_stream(self, config: StreamConfig, *, actor: str | None = None) -> StreamInfo:
        """Create a stream or queue. Creating one that exists with the same type is a no-op;
        a different type raises StreamAlreadyExistsError, a soft-deleted one StreamDeletedError.
        ``actor`` is recorded as ``created_by``."""
        self._check_open()
        return await self.backend.log.create_stream(config, validate_actor(actor))

    async def get_stream(self, name: str) -> StreamInfo:
        """Describe a stream, with its partitions' heads. Raises StreamNotFoundError (also for a
        soft-deleted stream)."""
        self._check_open()
        info = await self.backend.log.describe_stream(validate_stream_name(name))
        if info is None or info.deleted:
            raise StreamNotFoundError(name)
        return info

    async def list_streams(self, *, include_deleted: bool = False) -> list[StreamInfo]:
        """Every stream and queue, ordered by name; soft-deleted ones only with ``include_deleted``."""
        self._check_open()
        found = await self.backend.log.list_streams()
        return found if include_deleted else [info for info in found if not info.deleted]

    async def delete_stream(self, name: str, *, soft: bool = False, actor: str | None = None) -> None:
        """Delete a stream or queue and all its data (a hard delete, also of a soft-deleted stream).
        With ``soft=True`` it is only hidden and refuses writes: ``restore_stream`` brings it back
        within ``deleted_stream_grace_period``, ``purge_deleted_streams`` removes it for good.
        Raises StreamNotFoundError."""
        self._check_open()
        validate_stream_name(name)
        if soft:
            await self._change(name, LifecycleAction.SOFT_DELETE, actor)
        elif not await self.backend.log.delete_stream(name):
            raise StreamNotFoundError(name)

    async def archive_stream(self, name: str, *, actor: str | None = None) -> StreamInfo:
        """Make a stream or queue read-only: appends and enqueues raise StreamArchivedError, reads,
        subscriptions and consumer groups (dequeues and acks, for a queue) go on. An append racing
        the archive either commits before it or is refused. Archiving an archived stream is a no-op."""
        return await self._change(name, LifecycleAction.ARCHIVE, actor)

    async def unarchive_stream(self, name: str, *, actor: str | None = None) -> StreamInfo:
        """Make an archived stream writable again (a no-op for a writable one)."""
        return await self._change(name, LifecycleAction.UNARCHIVE, actor)

    async def restore_stream(self, name: str, *, actor: str | None = None) -> StreamInfo:
        """Bring back a soft-deleted stream, with its data, archived state and groups. Raises
        StreamDeletedError once its grace period is over (a no-op for a stream that is not deleted)."""
        info = await self._change(name, LifecycleAction.RESTORE, actor)
        if info.deleted:
            raise StreamDeletedError(
                name,
                f"it was deleted at {info.deleted_at} and its grace period "
                f"({self.options.deleted_stream_grace_period}) is over: purge it, then create it again",
            )
        return info

    async def purge_deleted_streams(self, *, older_than: timedelta | None = None) -> list[str]:
        """Hard-delete the streams soft-deleted more than ``older_than`` ago (default: the grace
        period); returns their names."""
        self._check_open()
        age = self.options.deleted_stream_grace_period if older_than is None else older_than
        check_duration(age, "older_than", allow_zero=True)
        return sorted(await self.backend.log.purge_deleted_streams(age))

    async def _change(self, name: str, action: LifecycleAction, actor: str | None) -> StreamInfo:
        self._check_open()
        change = LifecycleChange(action, validate_actor(actor), self.options.deleted_stream_grace_period)
        info = await self.backend.log.change_lifecycle(validate_stream_name(name), change)
        if info is None:
            raise StreamNotFoundError(name)
        if info.deleted and action in (LifecycleAction.ARCHIVE, LifecycleAction.UNARCHIVE):
            raise StreamDeletedError(name)
        return info

    async def set_partitions(self, name: str, partitions: int) -> StreamInfo:
        """Increase a persistent stream's partition count (never decrease it: keys would move and
        per-key order would break). Consumer groups pick the new partitions up at their next rebalance."""
        self._check_open()
        info = await self.get_stream(name)
        if info.type is not StreamType.PERSISTENT:
            raise StreamTypeError(f"{name!r} is a queue: only persistent streams have partitions")
        if not isinstance(partitions, int) or not info.partitions <= partitions <= MAX_PARTITIONS:
            raise InvalidArgumentError(
                f"stream {name!r} has {info.partitions} partition(s); partitions can only grow, "
                f"up to {MAX_PARTITIONS} (got {partitions})"
            )
        return await self.backend.log.set_partitions(name, partitions)

    def consumer_groups(self) -> ConsumerGroupReader:
        """Consume as a member of a consumer group, commit offsets, and administer groups."""
        self._check_open()
        return self.consumer_groups_factory(self)

    # ----------------------------------------------------------------- persistent streams

    async def append(
        self,
        stream_name: str,
        events: Sequence[object] | object,
        *,
        expected_offset: int | ExpectedOffset | None = None,
        correlation_id: str | None = None,
        partition_key: str | None = None,
        partition: int | None = None,
    ) -> AppendResult:
        """Append events atomically (all or none) and return the offsets assigned.

        ``expected_offset`` is the offset of the last event the caller has seen (or an
        ExpectedOffset); a mismatch raises ConcurrencyError. Events whose ids the stream already
        holds are not stored again: the original offsets are returned.
        """
        self._check_open()
        batch = list(events) if isinstance(events, list | tuple) else [events]
        if not batch:
            raise InvalidArgumentError("append needs at least one event")
        if len(batch) > MAX_BATCH_EVENTS:
            raise InvalidArgumentError(f"append takes at most {MAX_BATCH_EVENTS} events per call")
        if isinstance(expected_offset, int) and not isinstance(expected_offset, bool) and expected_offset < 0:
            raise InvalidArgumentError(
                f"expected_offset must be the offset of the last event seen (>= 0), got {expected_offset}; "
                "use ExpectedOffset.NO_STREAM for an empty stream"
            )
        if isinstance(expected_offset, int) and not isinstance(expected_offset, ExpectedOffset):
            check_integer(expected_offset, "expected_offset", maximum=MAX_INT64 - 1)
        if partition is not None:
            self._check_partition(partition)
        prepared = prepare_batch(batch, self.registry, self.options.max_payload_bytes, correlation_id=correlation_id)
        return await self._append_prepared(
            stream_name,
            prepared,
            expected_offset=ExpectedOffset.ANY if expected_offset is None else expected_offset,
            partition_key=partition_key,
            partition=partition,
        )

    async def append_prepared(
        self,
        stream_name: str,
        prepared: PreparedBatch,
        *,
        partition_key: str | None = None,
        partition: int | None = None,
    ) -> AppendResult:
        """Append a batch that ``sluice.core.batches.prepare_batch`` already validated and encoded with this
        store's registry and payload limit, so that its events are not encoded again: the group-commit
        batcher's path (``AppendBatcher`` prepares each caller's events when they arrive and joins them).
        No expected offset: a batch shared by several callers cannot have one. The batch's correlation id is
        the one the append records. Otherwise like ``append``."""
        self._check_open()
        if not isinstance(prepared, PreparedBatch):
            raise InvalidArgumentError(f"append_prepared takes a PreparedBatch, got {type(prepared).__name__}")
        if not len(prepared):
            raise InvalidArgumentError("append needs at least one event")
        if len(prepared) > MAX_BATCH_EVENTS:
            raise InvalidArgumentError(f"append takes at most {MAX_BATCH_EVENTS} events per call")
        check_prepared_batch(prepared, self.options.max_payload_bytes)
        if partition is not None:
            self._check_partition(partition)
        return await self._append_prepared(
            stream_name, prepared, expected_offset=ExpectedOffset.ANY, partition_key=partition_key, partition=partition
        )

    async def _append_prepared(
        self,
        stream_name: str,
        prepared: PreparedBatch,
        *,
        expected_offset: int | ExpectedOffset,
        partition_key: str | None,
        partition: int | None,
    ) -> AppendResult:
        request = AppendRequest(
            stream_name=validate_stream_name(stream_name),
            events=prepared,
            expected_offset=expected_offset,
            correlation_id=prepared.correlation_id,
            partition_key=partition_key,
            partition=partition,
        )
        started = time.perf_counter()
        with append_span(stream_name, event_count=len(prepared), correlation_id=prepared.correlation_id):
            result = await self.backend.log.append(request)
        metrics.record_appended(stream_name, 0 if result.deduplicated else len(prepared), time.perf_counter() - started)
        self.backend.signals.fire(stream_name)
        return result

    async def read_stream(
        self,
        stream_name: str,
        *,
        from_offset: int | None = None,
        from_time: datetime | None = None,
        direction: Direction = Direction.FORWARDS,
        limit: int | None = None,
        partition: int = 0,
    ) -> AsyncIterator[RecordedEvent]:
        """Read one partition in offset order. Forwards starts at offset 0 by default, backwards at
        the last event. ``from_time`` starts at the first event stored at or after that time."""
        self._check_open()
        validate_stream_name(stream_name)
        self._check_offset(from_offset, "from_offset")
        self._check_partition(partition)
        if limit is not None and limit <= 0:
            raise InvalidArgumentError(f"limit must be positive, got {limit}")
        info = await self.get_stream(stream_name)
        self._check_partition_exists(info, partition)
        head = info.partition_heads[partition].head
        position: int
        if from_time is not None:
            position = await self.backend.log.offset_at_time(stream_name, partition, from_time)
            if direction is Direction.BACKWARDS:
                position -= 1
        elif from_offset is not None:
            position = from_offset
        else:
            position = 0 if direction is Direction.FORWARDS else head - 1
        remaining = limit
        page_size = self.options.read_page_size
        while position >= 0 and (remaining is None or remaining > 0):
            count = page_size if remaining is None else min(page_size, remaining)
            rows = await self.backend.log.read_page(stream_name, partition, position, direction, count)
            for row in rows:
                yield RecordedEvent(row, stream_name, partition)
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < count:
                return
            last = RecordedEvent(rows[-1], stream_name, partition)
            position = last.offset + (1 if direction is Direction.FORWARDS else -1)

    async def subscribe(
        self, stream_name: str, *, from_offset: int = 0, partition: int = 0
    ) -> AsyncIterator[RecordedEvent]:
        """Catch up from ``from_offset``, then deliver new events as they are appended, forever.

        An idle subscription waits for a wake-up: an append here, or a notification of one
        elsewhere. It re-reads anyway every ``listening_poll_interval`` while notifications are
        heard, and every ``poll_interval`` while they cannot be. Subscriptions woken at the same
        offset share one read (sluice.core.shared_reads; docs/subscriptions.md). A stream
        that does not exist yet is waited for when its first append creates it (auto-creation);
        otherwise StreamNotFoundError.
        """
        self._check_open()
        self._check_offset(from_offset, "from_offset")
        self._check_partition(partition)
        info = await wait_for_stream(self.backend, self.options, validate_stream_name(stream_name))
        self._check_partition_exists(info, partition)
        position = from_offset
        page_size = self.options.read_page_size
        while not self._closed:
            ticket = self.backend.signals.ticket(stream_name)
            page = await self._shared_reads.read(
                (stream_name, partition, position, page_size),
                ticket,
                functools.partial(
                    self.backend.log.read_page, stream_name, partition, position, Direction.FORWARDS, page_size
                ),
            )
            for row in page:
                event = RecordedEvent(row, stream_name, partition)
                yield event
                position = event.offset + 1
            if len(page) < page_size:
                await self.backend.signals.wait(ticket, self._idle_wait_seconds())

    async def read_all(
        self, *, after: GlobalPosition | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Read the log of all streams in commit order, never skipping an event that committed
        late (see docs/global-log.md). Stops at the current end."""
        self._check_open()
        if limit is not None and limit <= 0:
            raise InvalidArgumentError(f"limit must be positive, got {limit}")
        remaining = limit
        page_size = self.options.read_page_size
        while remaining is None or remaining > 0:
            count = page_size if remaining is None else min(page_size, remaining)
            page = await self.backend.log.read_all_page(after, count)
            for row in page:
                yield global_log_event(row)
            if remaining is not None:
                remaining -= len(page)
            if len(page) < count:
                return
            after = global_log_event(page[-1]).global_position

    async def subscribe_all(self, *, after: GlobalPosition | None = None) -> AsyncIterator[RecordedEvent]:
        """read_all, then live: every event of every persistent stream, in commit order.

        It polls every ``poll_interval`` even while notifications are heard: the global log is read
        below the oldest running transaction (see read_all), so an event whose notification
        woke it may not be readable yet, and no further notification would come for it.
        """
        self._check_open()
        page_size = self.options.read_page_size
        wait_seconds = self.options.poll_interval.total_seconds()
        while not self._closed:
            ticket = self.backend.signals.ticket(ALL_STREAMS)
            page = await self._shared_reads.read(
                (ALL_STREAMS, after, page_size),
                ticket,
                functools.partial(self.backend.log.read_all_page, after, page_size),
            )
            for row in page:
                event = global_log_event(row)
                yield event
                after = event.global_position
            if len(page) < page_size:
                await self.backend.signals.wait(ticket, wait_seconds)

    def _idle_wait_seconds(self) -> float:
        """How long an idle reader waits for a wake-up before reading anyway (see sluice.core.signals)."""
        if self.backend.signals.hears_every_append:
            return self.options.listening_poll_interval.total_seconds()
        return self.options.poll_interval.total_seconds()

    # ----------------------------------------------------------------- shared helpers

    @staticmethod
    def _check_offset(offset: int | None, name: str) -> None:
        check_offset(offset, name)

    @staticmethod
    def _check_partition(partition: int) -> None:
        check_integer(partition, "partition", maximum=MAX_INT32)

    @staticmethod
    def _check_partition_exists(info: StreamInfo, partition: int) -> None:
        if info.type is not StreamType.PERSISTENT:
            raise StreamTypeError(f"{info.name!r} is a queue (an ephemeral stream): dequeue from it, do not read it")
        if partition >= info.partitions:
            raise InvalidArgumentError(
                f"stream {info.name!r} has {info.partitions} partition(s); partition {partition} does not exist"
            )
