"""The EventStore facade: the public API users hold, over the ``Backend`` one storage adapter hands out.

Public methods check their arguments and convert events here, once, record metrics and traces, and wake
readers; the backend's parts (``store/port.py``) receive only valid, prepared input. The behavioural
contract suite in ``tests/contract`` runs unchanged against every adapter.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from sluice.core.batches import PreparedBatch, check_prepared_batch, prepare_batch
from sluice.core.errors import (
    InvalidArgumentError,
    StaleReceiptError,
    StoreClosedError,
    StreamDeletedError,
    StreamNotFoundError,
    StreamTypeError,
)
from sluice.core.event_types import EventTypeRegistry, default_registry
from sluice.core.events import AppendResult, Direction, ExpectedOffset, GlobalPosition, RecordedEvent
from sluice.core.lifecycle import LifecycleAction, LifecycleChange, validate_actor
from sluice.core.messages import DeadLetter, EnqueueResult, QueueDepth, QueueMessage, Receipt
from sluice.core.names import validate_stream_name
from sluice.core.options import StoreOptions
from sluice.core.shared_reads import SharedReads
from sluice.core.signals import ALL_STREAMS
from sluice.core.streams import StreamConfig, StreamInfo, StreamType
from sluice.core.validation import (
    MAX_INT32,
    MAX_INT64,
    check_dedupe_key,
    check_duration,
    check_integer,
    check_offset,
    check_receipt,
)
from sluice.observability import metrics
from sluice.observability.tracing import append_span
from sluice.services.consumers.reader import ConsumerGroupReader
from sluice.services.consumers.stream_wait import wait_for_stream
from sluice.store.backend import Backend
from sluice.store.port import AppendRequest, BackendCheck

DEFAULT_VISIBILITY_TIMEOUT = timedelta(seconds=30)
MAX_BATCH_EVENTS = 10_000
MAX_PARTITIONS = 1024


class EventStore:
    """Persistent streams (append-only logs) and ephemeral streams (queues), stored by ``backend``."""

    def __init__(self, backend: Backend, options: StoreOptions, registry: EventTypeRegistry | None = None) -> None:
        self.backend = backend
        """The storage this store was opened on; services reach their storage through it."""
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
        return ConsumerGroupReader(self)

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
            page = await self.backend.log.read_page(stream_name, partition, position, direction, count)
            for event in page:
                yield event
            if remaining is not None:
                remaining -= len(page)
            if len(page) < count:
                return
            position = page[-1].offset + (1 if direction is Direction.FORWARDS else -1)

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
        info = await wait_for_stream(self, validate_stream_name(stream_name))
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
            for event in page:
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
            for event in page:
                yield event
            if remaining is not None:
                remaining -= len(page)
            if len(page) < count:
                return
            after = page[-1].global_position

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
            for event in page:
                yield event
                after = event.global_position
            if len(page) < page_size:
                await self.backend.signals.wait(ticket, wait_seconds)

    def _idle_wait_seconds(self) -> float:
        """How long an idle reader waits for a wake-up before reading anyway (see sluice.core.signals)."""
        if self.backend.signals.hears_every_append:
            return self.options.listening_poll_interval.total_seconds()
        return self.options.poll_interval.total_seconds()

    # ----------------------------------------------------------------- queues

    async def enqueue(
        self,
        queue_name: str,
        message: object,
        *,
        delay: timedelta | None = None,
        dedupe_key: str | None = None,
        correlation_id: str | None = None,
    ) -> EnqueueResult:
        """Put one message on a queue. ``delay`` postpones its first delivery; a ``dedupe_key``
        already held by a pending message makes this a no-op that returns that message's id."""
        check_dedupe_key(dedupe_key)
        results = await self.enqueue_many(
            queue_name, [message], delay=delay, correlation_id=correlation_id, dedupe_keys=[dedupe_key]
        )
        return results[0]

    async def enqueue_many(
        self,
        queue_name: str,
        messages: Sequence[object],
        *,
        delay: timedelta | None = None,
        correlation_id: str | None = None,
        dedupe_keys: Sequence[str | None] | None = None,
    ) -> list[EnqueueResult]:
        """Put several messages on a queue in one transaction."""
        self._check_open()
        validate_stream_name(queue_name)
        if not messages:
            raise InvalidArgumentError("enqueue_many needs at least one message")
        if len(messages) > MAX_BATCH_EVENTS:
            raise InvalidArgumentError(f"enqueue_many takes at most {MAX_BATCH_EVENTS} messages per call")
        if delay is not None:
            check_duration(delay, "delay", allow_zero=True)
        keys: list[str | None] = list(dedupe_keys) if dedupe_keys is not None else [None] * len(messages)
        if len(keys) != len(messages):
            raise InvalidArgumentError("dedupe_keys must have one entry per message")
        for key in keys:
            check_dedupe_key(key)
        prepared = prepare_batch(messages, self.registry, self.options.max_payload_bytes, correlation_id=correlation_id)
        results = await self.backend.queues.enqueue(
            queue_name, prepared, keys, delay or timedelta(0), prepared.correlation_id
        )
        metrics.record_enqueued(queue_name, sum(not result.deduplicated for result in results))
        self.backend.signals.fire(queue_name)
        return results

    async def dequeue(
        self, queue_name: str, *, visibility_timeout: timedelta = DEFAULT_VISIBILITY_TIMEOUT
    ) -> QueueMessage | None:
        """Lease the next visible message for ``visibility_timeout``; None when there is none."""
        messages = await self.dequeue_many(queue_name, max_messages=1, visibility_timeout=visibility_timeout)
        return messages[0] if messages else None

    async def dequeue_many(
        self,
        queue_name: str,
        *,
        max_messages: int = 10,
        visibility_timeout: timedelta = DEFAULT_VISIBILITY_TIMEOUT,
    ) -> list[QueueMessage]:
        """Lease up to ``max_messages`` visible messages. Messages that have used up their
        attempts move to the dead-letter queue instead of being delivered."""
        self._check_open()
        validate_stream_name(queue_name)
        if not 0 < max_messages <= 1000:
            raise InvalidArgumentError(f"max_messages must be 1 to 1000, got {max_messages}")
        self._check_duration(visibility_timeout, "visibility_timeout")
        messages = await self.backend.queues.dequeue(queue_name, max_messages, visibility_timeout)
        if messages:
            waited = (datetime.now(UTC) - messages[0].enqueued_at).total_seconds()
            metrics.record_dequeued(queue_name, len(messages), waited)
        return messages

    async def acknowledge(self, queue_name: str, receipt: Receipt) -> None:
        """Finish a message. Raises StaleReceiptError (and changes nothing) if the receipt is stale."""
        stale = await self.acknowledge_many(queue_name, [receipt])
        if stale:
            raise StaleReceiptError(queue_name, receipt)

    async def acknowledge_many(self, queue_name: str, receipts: Sequence[Receipt]) -> list[Receipt]:
        """Finish several messages in one round trip; returns the receipts that were stale
        (those changed nothing; the others were acknowledged)."""
        self._check_open()
        validate_stream_name(queue_name)
        if not receipts:
            return []
        for receipt in receipts:
            check_receipt(receipt.message_id, receipt.attempt)
        stale = await self.backend.queues.acknowledge(queue_name, list(receipts))
        metrics.record_acknowledged(queue_name, len(receipts) - len(stale))
        return stale

    async def nack(
        self,
        queue_name: str,
        receipt: Receipt,
        *,
        delay: timedelta | None = None,
        reason: str | None = None,
    ) -> None:
        """Give a message back for redelivery after ``delay`` (default: at once), recording
        ``reason`` in its history. On its last attempt it moves to the dead-letter queue."""
        self._check_open()
        validate_stream_name(queue_name)
        check_receipt(receipt.message_id, receipt.attempt)
        if delay is not None:
            check_duration(delay, "delay", allow_zero=True)
        if not await self.backend.queues.nack(queue_name, receipt, delay or timedelta(0), reason or "nacked"):
            raise StaleReceiptError(queue_name, receipt)
        metrics.record_nacked(queue_name)

    async def extend(self, queue_name: str, receipt: Receipt, *, by: timedelta) -> None:
        """Lengthen a lease by ``by`` (from its current end, or from now if it has run out)."""
        self._check_open()
        validate_stream_name(queue_name)
        check_receipt(receipt.message_id, receipt.attempt)
        self._check_duration(by, "by")
        if not await self.backend.queues.extend(queue_name, receipt, by):
            raise StaleReceiptError(queue_name, receipt)

    async def dead_letters(self, queue_name: str, *, limit: int = 100) -> list[DeadLetter]:
        """The queue's dead letters, oldest first."""
        self._check_open()
        validate_stream_name(queue_name)
        if limit <= 0:
            raise InvalidArgumentError(f"limit must be positive, got {limit}")
        return await self.backend.queues.dead_letters(queue_name, limit)

    async def redrive_dead_letters(self, queue_name: str, *, dead_letter_ids: Sequence[int] | None = None) -> list[int]:
        """Put dead letters (those named, or all) back on the queue as new messages, visible at once,
        with a fresh attempt count; their delivery history is kept, and ``metadata["redriven_from"]``
        records the dead letter, the original message id and its attempts. Returns the new message ids
        (a new id, so that a stale receipt of the original message can never settle the new one)."""
        self._check_open()
        validate_stream_name(queue_name)
        ids = self._checked_dead_letter_ids(dead_letter_ids)
        redriven = await self.backend.queues.redrive_dead_letters(queue_name, ids)
        if redriven:
            self.backend.signals.fire(queue_name)
        return redriven

    async def purge_dead_letters(self, queue_name: str, *, dead_letter_ids: Sequence[int] | None = None) -> int:
        """Delete dead letters (those named, or all) for good; returns how many were deleted."""
        self._check_open()
        validate_stream_name(queue_name)
        return await self.backend.queues.purge_dead_letters(queue_name, self._checked_dead_letter_ids(dead_letter_ids))

    @staticmethod
    def _checked_dead_letter_ids(dead_letter_ids: Sequence[int] | None) -> list[int] | None:
        if dead_letter_ids is None:
            return None
        ids = list(dead_letter_ids)
        if not ids or any(
            isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT64 for value in ids
        ):
            raise InvalidArgumentError(
                f"dead_letter_ids must be integers from 1 to {MAX_INT64} (or None for all of them)"
            )
        return ids

    async def queue_depth(self, queue_name: str) -> QueueDepth:
        """Messages waiting on the queue and leased from it (a count of the queue's rows: meant for
        metrics refreshed every few seconds, not for every message)."""
        self._check_open()
        validate_stream_name(queue_name)
        return await self.backend.queues.queue_depth(queue_name)

    # ----------------------------------------------------------------- shared helpers

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this store was closed")

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

    @staticmethod
    def _check_duration(duration: timedelta, name: str) -> None:
        check_duration(duration, name)
