"""The in-memory adapter, for development and tests of applications built on Sluice.

It is a product feature, not a test double: it passes the same behavioural contract suite as the
PostgreSQL backend. Every operation runs without awaiting inside it, so on one event loop each is
atomic, just as one statement is on PostgreSQL. Payloads are stored encoded and decoded on read,
so callers never share mutable objects with the store. Nothing survives the process.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sluice.core.batches import PreparedBatch
from sluice.core.compression import PLAIN_CONTENT_TYPES, plain_row
from sluice.core.errors import (
    ConcurrencyError,
    DuplicateEventIdError,
    StreamAlreadyExistsError,
    StreamArchivedError,
    StreamDeletedError,
    StreamNotFoundError,
    StreamTypeError,
)
from sluice.core.event_types import EventTypeRegistry
from sluice.core.events import AppendResult, Direction, EventRow, ExpectedOffset, GlobalPosition, RecordedEvent
from sluice.core.lifecycle import AUTO_CREATE_ACTOR, LifecycleAction, LifecycleChange
from sluice.core.messages import DeadLetter, DeliveryFailure, EnqueueResult, QueueDepth, QueueMessage, Receipt
from sluice.core.options import StoreOptions
from sluice.core.partitioning import PartitionSpreader
from sluice.core.payloads import decode_payload, encode_metadata
from sluice.core.signals import AppendSignals
from sluice.core.streams import StreamConfig, StreamInfo, StreamType, same_shape, shape_description
from sluice.core.validation import MAX_DURATION, check_partition_key, check_prepared_events, lease_too_long
from sluice.observability import metrics
from sluice.services.replay.records import MemoryReplayRecords
from sluice.services.retries.memory import MemoryGroupDeadLetters
from sluice.services.sagas.memory_repository import MemorySagaRepository
from sluice.storage.memory.groups import MemoryConsumerGroups
from sluice.storage.memory.retention import MemoryRetentionStorage
from sluice.storage.memory.state import (
    GlobalEntry,
    MemoryPartition,
    MemoryState,
    MemoryStream,
    StoredEvent,
    StoredMessage,
    offset_at_time,
)
from sluice.store import AppendRequest, Backend, BackendCheck, EventStore


def _now() -> datetime:
    return datetime.now(UTC)


class MemoryStreams:
    """The stream log and the queues in process memory (``StreamLog`` and ``QueueStorage``)."""

    def __init__(self, state: MemoryState, options: StoreOptions) -> None:
        self.options = options
        self._state = state
        self._spreader = PartitionSpreader()
        self._transactions = itertools.count(1)
        self._sequence = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._dead_letter_ids = itertools.count(1)
        self._serials = itertools.count(1)

    # ----------------------------------------------------------------- streams

    async def create_stream(self, config: StreamConfig, actor: str | None = None) -> StreamInfo:
        return self._create(config, actor).info()

    def _create(self, config: StreamConfig, actor: str | None) -> MemoryStream:
        existing = self._state.streams.get(config.name)
        if existing is not None:
            if existing.deleted_at is not None:
                raise StreamDeletedError(config.name, "restore it or purge it before creating it again")
            if not same_shape(existing.config, config):
                raise StreamAlreadyExistsError(config.name, shape_description(existing.config))
            return existing
        stream = MemoryStream(
            next(self._serials), config, _now(), [MemoryPartition() for _ in range(config.partitions)], created_by=actor
        )
        self._state.streams[config.name] = stream
        return stream

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
        now = _now()
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
        cutoff = _now() - older_than
        doomed = [
            name
            for name, stream in self._state.streams.items()
            if stream.deleted_at is not None and stream.deleted_at < cutoff
        ]
        for name in doomed:
            await self.delete_stream(name)
        return doomed

    def _stream(self, name: str, expected_type: StreamType, *, create: bool) -> MemoryStream:
        """The stream ``name`` of ``expected_type``; ``create`` (appends and enqueues, the writes)
        auto-creates it as the rules say and refuses an archived one."""
        stream = self._state.streams.get(name)
        if stream is None:
            config = self.options.auto_create_config(name, expected_type) if create else None
            if config is None:
                raise StreamNotFoundError(name)
            stream = self._create(config, AUTO_CREATE_ACTOR)
        if stream.deleted_at is not None:
            raise StreamDeletedError(name)
        if create and stream.archived_at is not None:
            raise StreamArchivedError(name)
        if stream.config.type is not expected_type:
            if expected_type is StreamType.PERSISTENT:
                raise StreamTypeError(f"{name!r} is a queue (an ephemeral stream): use enqueue, not append")
            raise StreamTypeError(f"{name!r} is a persistent stream: use append and read, not queue operations")
        return stream

    async def set_partitions(self, name: str, partitions: int) -> StreamInfo:
        stream = self._stream(name, StreamType.PERSISTENT, create=False)
        stream.partitions.extend(MemoryPartition() for _ in range(partitions - len(stream.partitions)))
        stream.config = stream.config.model_copy(update={"partitions": partitions})
        return stream.info()

    # ----------------------------------------------------------------- appends

    async def append(self, request: AppendRequest) -> AppendResult:
        check_partition_key(request.partition_key)  # before a stream is auto-created
        check_prepared_events(
            request.events.schema_versions, request.events.metadata, limit=self.options.max_payload_bytes
        )
        stream = self._stream(request.stream_name, StreamType.PERSISTENT, create=True)
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
        self._check_expectation(request, partition_number, head)
        now = _now()
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

    @staticmethod
    def _check_expectation(request: AppendRequest, partition: int, head: int) -> None:
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
            raise ConcurrencyError(
                stream_name=request.stream_name, partition=partition, expected=description, head=head
            )

    # ----------------------------------------------------------------- reads

    def _recorded(self, stream: MemoryStream, partition: int, stored: StoredEvent) -> RecordedEvent:
        return RecordedEvent(self._row(stored), stream.config.name, partition)

    def _row(self, stored: StoredEvent) -> EventRow:
        """The event's row, its payload decompressed (capped at max_payload_bytes) if it was compressed."""
        prepared = stored.prepared
        if prepared.content_type not in PLAIN_CONTENT_TYPES:
            return plain_row(self._stored_row(stored), limit=self.options.max_payload_bytes)
        return self._stored_row(stored)

    @staticmethod
    def _stored_row(stored: StoredEvent) -> EventRow:
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

    async def read_rows(self, stream_name: str, partition: int, start: int, count: int) -> Sequence[EventRow]:
        stream = self._state.streams.get(stream_name)
        if stream is None or stream.config.type is not StreamType.PERSISTENT:
            return []
        events = stream.partitions[partition].events
        start = max(start, events.first_offset)  # as on PostgreSQL: the first events at or after start
        return [self._row(stored) for stored in events[start : start + count]]

    async def read_page(
        self, stream_name: str, partition: int, start: int, direction: Direction, count: int
    ) -> list[RecordedEvent]:
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
        return [self._recorded(stream, partition, stored) for stored in selected]

    async def offset_at_time(self, stream_name: str, partition: int, at: datetime) -> int:
        return offset_at_time(self._stream(stream_name, StreamType.PERSISTENT, create=False), partition, at)

    async def read_all_page(self, after: GlobalPosition | None, count: int) -> list[RecordedEvent]:
        start = (
            0 if after is None else bisect.bisect_right(self._state.global_log, after, key=lambda entry: entry.position)
        )
        page = []
        for entry in self._state.global_log[start : start + count]:
            # Retention removes the entries of the events it prunes (MemoryState.forget_pruned).
            stored = entry.stream.partitions[entry.partition].events[entry.offset]
            page.append(self._recorded(entry.stream, entry.partition, stored))
        return page

    # ----------------------------------------------------------------- queues

    async def enqueue(
        self,
        queue_name: str,
        messages: PreparedBatch,
        dedupe_keys: list[str | None],
        delay: timedelta,
        correlation_id: str | None,
    ) -> list[EnqueueResult]:
        check_prepared_events(messages.schema_versions, messages.metadata, limit=self.options.max_payload_bytes)
        stream = self._stream(queue_name, StreamType.EPHEMERAL, create=True)
        messages = stream.config.compression_policy.apply(messages)
        pending_by_key = {
            message.dedupe_key: message.message_id for message in stream.messages.values() if message.dedupe_key
        }
        results = []
        now = _now()
        for prepared, key in zip(messages.events(), dedupe_keys, strict=True):
            if key is not None and key in pending_by_key:
                results.append(EnqueueResult(queue_name, pending_by_key[key], deduplicated=True))
                continue
            message_id = next(self._message_ids)
            stream.messages[message_id] = StoredMessage(
                message_id, prepared, correlation_id, key, enqueued_at=now, visible_at=now + delay
            )
            if key is not None:
                pending_by_key[key] = message_id
            results.append(EnqueueResult(queue_name, message_id))
        return results

    async def dequeue(self, queue_name: str, max_messages: int, visibility_timeout: timedelta) -> list[QueueMessage]:
        stream = self._stream(queue_name, StreamType.EPHEMERAL, create=False)
        now = _now()
        visible = sorted(
            (message for message in stream.messages.values() if message.visible_at <= now),
            key=lambda message: (message.visible_at, message.message_id),
        )
        delivered: list[QueueMessage] = []
        for message in visible:
            if len(delivered) == max_messages:
                break
            if message.attempts >= stream.config.max_attempts:
                message.record_expired_lease()
                self._bury(stream, message)
                continue
            message.record_expired_lease()
            message.attempts += 1
            message.visible_at = now + visibility_timeout
            message.first_delivered_at = message.first_delivered_at or now
            message.last_delivered_at = now
            message.last_failed_attempt = message.attempts - 1
            delivered.append(self._queue_message(queue_name, message, self.options.max_payload_bytes))
        return delivered

    def _bury(self, stream: MemoryStream, message: StoredMessage) -> None:
        del stream.messages[message.message_id]
        metrics.record_dead_lettered(stream.config.name, 1)
        prepared = message.prepared
        dead_letter_id = next(self._dead_letter_ids)
        stream.buried[dead_letter_id] = message
        stream.dead_letters.append(
            DeadLetter(
                queue_name=stream.config.name,
                dead_letter_id=dead_letter_id,
                message_id=message.message_id,
                event_type=prepared.event_type,
                data=decode_payload(prepared.payload, prepared.content_type, limit=self.options.max_payload_bytes),
                metadata=decode_payload(prepared.metadata_json.encode(), "application/json"),
                correlation_id=message.correlation_id,
                enqueued_at=message.enqueued_at,
                attempts=message.attempts,
                first_delivered_at=message.first_delivered_at,
                last_delivered_at=message.last_delivered_at,
                failures=tuple(message.failures),
                dead_lettered_at=_now(),
            )
        )

    @staticmethod
    def _queue_message(queue_name: str, message: StoredMessage, payload_limit: int) -> QueueMessage:
        prepared = message.prepared
        return QueueMessage(
            queue_name=queue_name,
            message_id=message.message_id,
            event_type=prepared.event_type,
            data=decode_payload(prepared.payload, prepared.content_type, limit=payload_limit),
            metadata=decode_payload(prepared.metadata_json.encode(), "application/json"),
            correlation_id=message.correlation_id,
            enqueued_at=message.enqueued_at,
            attempt=message.attempts,
            visible_at=message.visible_at,
            dedupe_key=message.dedupe_key,
        )

    def _current(self, queue_name: str, receipt: Receipt) -> tuple[MemoryStream, StoredMessage] | None:
        stream = self._state.streams.get(queue_name)
        if stream is None:
            return None
        message = stream.messages.get(receipt.message_id)
        if message is None or message.attempts != receipt.attempt:
            return None
        return stream, message

    async def acknowledge(self, queue_name: str, receipts: list[Receipt]) -> list[Receipt]:
        stale = []
        for receipt in receipts:
            current = self._current(queue_name, receipt)
            if current is None:
                stale.append(receipt)
            else:
                del current[0].messages[receipt.message_id]
        return stale

    async def nack(self, queue_name: str, receipt: Receipt, delay: timedelta, reason: str) -> bool:
        current = self._current(queue_name, receipt)
        if current is None:
            return False
        stream, message = current
        now = _now()
        message.failures.append(DeliveryFailure(message.attempts, now, reason))
        message.last_failed_attempt = message.attempts
        if message.attempts >= stream.config.max_attempts:
            self._bury(stream, message)
        else:
            message.visible_at = now + delay
        return True

    async def extend(self, queue_name: str, receipt: Receipt, by: timedelta) -> bool:
        current = self._current(queue_name, receipt)
        if current is None:
            return False
        message = current[1]
        now = _now()
        new_end = max(message.visible_at, now) + by
        if new_end > now + MAX_DURATION:
            raise lease_too_long(queue_name, receipt)
        message.visible_at = new_end
        return True

    async def dead_letters(self, queue_name: str, limit: int) -> list[DeadLetter]:
        stream = self._stream(queue_name, StreamType.EPHEMERAL, create=False)
        return stream.dead_letters[:limit]

    async def redrive_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> list[int]:
        stream = self._stream(queue_name, StreamType.EPHEMERAL, create=False)
        chosen = self._take_dead_letters(stream, dead_letter_ids)
        now = _now()
        redriven = []
        for dead_letter in chosen:
            original = stream.buried.pop(dead_letter.dead_letter_id)
            metadata = dict(dead_letter.metadata)
            metadata["redriven_from"] = {
                "dead_letter_id": dead_letter.dead_letter_id,
                "message_id": dead_letter.message_id,
                "attempts": dead_letter.attempts,
            }
            prepared = dataclasses.replace(original.prepared, metadata_json=encode_metadata(metadata))
            message_id = next(self._message_ids)
            stream.messages[message_id] = StoredMessage(
                message_id,
                prepared,
                original.correlation_id,
                None,
                enqueued_at=original.enqueued_at,
                visible_at=now,
                failures=list(original.failures),
            )
            redriven.append(message_id)
        return redriven

    async def purge_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> int:
        stream = self._stream(queue_name, StreamType.EPHEMERAL, create=False)
        chosen = self._take_dead_letters(stream, dead_letter_ids)
        for dead_letter in chosen:
            stream.buried.pop(dead_letter.dead_letter_id, None)
        return len(chosen)

    @staticmethod
    def _take_dead_letters(stream: MemoryStream, dead_letter_ids: list[int] | None) -> list[DeadLetter]:
        """Remove the chosen dead letters (all when ``dead_letter_ids`` is None) and return them."""
        wanted = None if dead_letter_ids is None else set(dead_letter_ids)
        chosen = [letter for letter in stream.dead_letters if wanted is None or letter.dead_letter_id in wanted]
        stream.dead_letters = [letter for letter in stream.dead_letters if letter not in chosen]
        return chosen

    async def queue_depth(self, queue_name: str) -> QueueDepth:
        stream = self._stream(queue_name, StreamType.EPHEMERAL, create=False)
        now = _now()
        in_flight = sum(
            1
            for message in stream.messages.values()
            if message.attempts > message.last_failed_attempt and message.visible_at > now
        )
        return QueueDepth(queue_name, waiting=len(stream.messages) - in_flight, in_flight=in_flight)


class _MemoryConnection:
    """The in-memory adapter has no connections: always ready, nothing to close."""

    async def check(self) -> BackendCheck:
        return BackendCheck(backend="memory")

    async def close(self) -> None:
        return None

    def terminate(self) -> None:
        return None


def memory_backend(options: StoreOptions) -> Backend:
    """A new, empty in-memory backend: every part shares one state, and lives as long as its store."""
    signals = AppendSignals()
    state = MemoryState(signals)
    streams = MemoryStreams(state, options)
    groups = MemoryConsumerGroups(state)
    return Backend(
        name="memory",
        log=streams,
        queues=streams,
        groups=groups,
        retention=MemoryRetentionStorage(state, groups),
        dead_letters=MemoryGroupDeadLetters(streams, groups),
        sagas=MemorySagaRepository(),
        replays=MemoryReplayRecords(),
        signals=signals,
        connection=_MemoryConnection(),
    )


class MemoryEventStore(EventStore):
    """An EventStore in process memory. Open it with ``await sluice.connect("memory://")``.

    Only a constructor: it builds a new in-memory backend; everything else is ``EventStore``'s."""

    def __init__(self, options: StoreOptions, registry: EventTypeRegistry | None = None) -> None:
        super().__init__(memory_backend(options), options, registry)
