"""The PostgreSQL adapter: streams, the global log and queues on asyncpg, one statement per operation,
and the Backend bundling every part of the adapter (``open_postgres_backend``).

How it stays correct under concurrency (docs/design.md explains each choice):
- an append reserves offsets by updating its partition's counter row in the same statement that
  inserts the events, so writers to one partition serialize and offsets are dense and visible in order;
- the global log is read below the oldest running transaction (see read_all_forwards);
- every queue operation after dequeue is conditional on the receipt's delivery attempt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import asyncpg
import pydantic_core

from sluice.core.batches import PreparedBatch
from sluice.core.compression import Compression, CompressionPolicy, plain_rows
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
from sluice.core.lifecycle import AUTO_CREATE_ACTOR, LifecycleChange
from sluice.core.messages import DeadLetter, DeliveryFailure, EnqueueResult, QueueDepth, QueueMessage, Receipt
from sluice.core.options import StoreOptions
from sluice.core.partitioning import PartitionSpreader
from sluice.core.payloads import decode_payload
from sluice.core.signals import AppendSignals
from sluice.core.streams import (
    DeliverySemantics,
    PartitionInfo,
    StreamConfig,
    StreamInfo,
    StreamType,
    same_shape,
    shape_description,
)
from sluice.core.validation import MAX_DURATION, check_partition_key, check_prepared_events, lease_too_long
from sluice.observability import metrics
from sluice.storage.postgres import migrations
from sluice.storage.postgres.database import PostgresDatabase
from sluice.storage.postgres.driver_errors import create_translating_pool, translated
from sluice.storage.postgres.group_dead_letters import PostgresGroupDeadLetters
from sluice.storage.postgres.groups import PostgresConsumerGroups
from sluice.storage.postgres.notifications import NotificationChannel
from sluice.storage.postgres.queries import query
from sluice.storage.postgres.replays import PostgresReplayRecords
from sluice.storage.postgres.retention import PostgresRetentionStorage
from sluice.storage.postgres.sagas import PostgresSagaRepository
from sluice.store import AppendRequest, Backend, BackendCheck, EventStore

PARTITION_COUNT_TTL_SECONDS = 5.0
"""How long append trusts a cached partition count before looking it up again."""


def _expectation(expected: int | ExpectedOffset) -> tuple[int | None, bool, str]:
    """(expected next offset or None, require a non-empty partition, description)."""
    if expected is ExpectedOffset.ANY:
        return None, False, "any position"
    if expected is ExpectedOffset.NO_STREAM:
        return 0, False, "no events yet"
    if expected is ExpectedOffset.STREAM_EXISTS:
        return None, True, "at least one event"
    assert isinstance(expected, int)
    return expected + 1, False, f"last offset {expected}"


class PostgresStreams:
    """The stream log and the queues on PostgreSQL (``StreamLog`` and ``QueueStorage``)."""

    def __init__(
        self, *, pool: asyncpg.Pool, options: StoreOptions, signals: AppendSignals, notifications: NotificationChannel
    ) -> None:
        self.options = options
        self._pool = pool
        self._signals = signals
        self._notifications = notifications
        self._spreader = PartitionSpreader()
        self._cached_streams: dict[str, _CachedStream] = {}

    # ----------------------------------------------------------------- streams

    async def create_stream(self, config: StreamConfig, actor: str | None = None) -> StreamInfo:
        created = await self._pool.fetchval(
            query("create_stream"),
            config.name,
            config.type.value,
            config.partitions,
            config.max_attempts,
            config.delivery.value,
            config.compression.value,
            config.compression_threshold,
            actor,
        )
        info = await self.describe_stream(config.name)
        if info is None:  # deleted again between the two statements
            raise StreamNotFoundError(config.name)
        if info.deleted:
            raise StreamDeletedError(config.name, "restore it or purge it before creating it again")
        if created is None and not same_shape(info.config, config):
            raise StreamAlreadyExistsError(config.name, shape_description(info.config))
        self._remember(info)
        return info

    def _remember(self, info: StreamInfo) -> _CachedStream:
        cached = _CachedStream(
            info.type,
            info.partitions,
            CompressionPolicy(info.compression, info.compression_threshold),
            time.monotonic(),
        )
        self._cached_streams[info.name] = cached
        return cached

    async def describe_stream(self, name: str) -> StreamInfo | None:
        rows = await self._pool.fetch(query("describe_stream"), name)
        streams = _stream_infos(rows)
        return streams[0] if streams else None

    async def list_streams(self) -> list[StreamInfo]:
        rows = await self._pool.fetch(query("list_streams"))
        return _stream_infos(rows)

    async def delete_stream(self, name: str) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            stream_id = await connection.fetchval(query("lock_stream_for_delete"), name)
            if stream_id is None:
                return False
            await connection.execute(query("delete_stream_data"), stream_id)
        self._cached_streams.pop(name, None)
        return True

    async def change_lifecycle(self, name: str, change: LifecycleChange) -> StreamInfo | None:
        # One statement: archive and soft delete lock the stream's row and its partitions' append
        # locks after marking it, so appends and enqueues in flight commit first (see queries.sql).
        stream_id = await self._pool.fetchval(
            query("change_lifecycle"), name, change.action.value, change.actor, change.grace_period
        )
        if stream_id is None:
            return None
        return await self.describe_stream(name)

    async def purge_deleted_streams(self, older_than: timedelta) -> list[str]:
        rows = await self._pool.fetch(query("purge_deleted_streams"), older_than)
        names = [str(row["name"]) for row in rows]
        for name in names:
            self._cached_streams.pop(name, None)
        return names

    async def set_partitions(self, name: str, partitions: int) -> StreamInfo:
        await self._pool.execute(query("increase_partitions"), name, partitions)
        self._cached_streams.pop(name, None)
        info = await self.describe_stream(name)
        if info is None:
            raise StreamNotFoundError(name)
        return info

    # ----------------------------------------------------------------- appends

    async def append(self, request: AppendRequest) -> AppendResult:
        check_partition_key(request.partition_key)  # before a stream is auto-created
        check_prepared_events(
            request.events.schema_versions, request.events.metadata, limit=self.options.max_payload_bytes
        )
        name = request.stream_name
        events = request.events
        expected_next, require_existing, expectation = _expectation(request.expected_offset)
        for _ in range(3):
            stream = await self._stream_settings(name, StreamType.PERSISTENT)
            arguments = _event_arrays(stream.compression.apply(events))
            partition = request.route(stream.partitions, self._spreader)
            try:
                first_offset = await self._pool.fetchval(
                    query("append_events"),
                    name,
                    partition,
                    expected_next,
                    require_existing,
                    *arguments,
                    events.correlation_ids,
                )
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name != "events_event_id":
                    raise
                deduplicated = await self._deduplicate(name, events)
                if deduplicated is None:
                    continue
                return deduplicated
            if first_offset is not None:
                first = int(first_offset)
                self._notifications.appended(name)
                return AppendResult(
                    stream_name=name,
                    partitions=(partition,) * len(events),
                    offsets=tuple(range(first, first + len(events))),
                )
            head = await self._pool.fetchrow(query("partition_head"), name, partition)
            if head is None:
                self._cached_streams.pop(name, None)
                if self.options.auto_create_config(name, StreamType.PERSISTENT) is None:
                    raise StreamNotFoundError(name)
                continue
            _check_appendable(name, head)
            if head["next_offset"] is None:  # our partition count was stale
                self._cached_streams.pop(name, None)
                continue
            if expected_next is not None or require_existing:
                raise ConcurrencyError(
                    stream_name=name, partition=partition, expected=expectation, head=int(head["next_offset"])
                )
        raise ConcurrencyError(stream_name=name, partition=0, expected="a stable stream", head=0)

    async def _stream_settings(self, name: str, stream_type: StreamType) -> _CachedStream:
        """What a write to ``name`` needs (partitions, compression), cached for a few seconds; creates
        the stream (queue) as the auto-create rules say when it is missing. Archived streams are not
        refused here: the write's own statement refuses them, so a cached entry is never wrong about it."""
        cached = self._cached_streams.get(name)
        if cached is None or time.monotonic() - cached.looked_up_at >= PARTITION_COUNT_TTL_SECONDS:
            info = await self.describe_stream(name)
            if info is None:
                config = self.options.auto_create_config(name, stream_type)
                if config is None:
                    raise StreamNotFoundError(name)
                info = await self.create_stream(config, AUTO_CREATE_ACTOR)
            if info.deleted:
                raise StreamDeletedError(name)
            cached = self._remember(info)
        if cached.type is not stream_type:
            if stream_type is StreamType.PERSISTENT:
                raise StreamTypeError(f"{name!r} is a queue (an ephemeral stream): use enqueue, not append")
            raise StreamTypeError(f"{name!r} is a persistent stream: use append, not enqueue")
        return cached

    async def _deduplicate(self, name: str, events: PreparedBatch) -> AppendResult | None:
        """After a duplicate event id: the original offsets if every id is stored, None to retry."""
        ids = events.event_ids
        rows = await self._pool.fetch(query("existing_event_offsets"), name, ids)
        if not rows:
            return None  # the conflicting append rolled back; try again
        if len(rows) != len(ids):
            raise DuplicateEventIdError(
                f"{len(rows)} of the {len(ids)} event ids in this batch are already in stream {name!r}: "
                "a retried batch must hold the same events as the original"
            )
        found = {row["event_id"]: (int(row["partition"]), int(row["event_offset"])) for row in rows}
        return AppendResult(
            stream_name=name,
            partitions=tuple(found[event_id][0] for event_id in ids),
            offsets=tuple(found[event_id][1] for event_id in ids),
            deduplicated=True,
        )

    # ----------------------------------------------------------------- reads

    async def read_page(
        self, stream_name: str, partition: int, start: int, direction: Direction, count: int
    ) -> list[RecordedEvent]:
        name = "read_forwards" if direction is Direction.FORWARDS else "read_backwards"
        rows = await self._pool.fetch(query(name), stream_name, partition, start, count)
        # read_forwards' columns are RecordedEvent's row layout: the rows are wrapped as they are.
        plain = plain_rows(rows, limit=self.options.max_payload_bytes)  # compressed payloads decompressed
        return [RecordedEvent(row, stream_name, partition) for row in plain]

    async def read_rows(self, stream_name: str, partition: int, start: int, count: int) -> Sequence[EventRow]:
        rows: list[asyncpg.Record] = await self._pool.fetch(
            query("read_forwards"), stream_name, partition, start, count
        )
        # read_forwards' columns are the event row layout; compressed payloads are decompressed.
        return plain_rows(rows, limit=self.options.max_payload_bytes)

    async def offset_at_time(self, stream_name: str, partition: int, at: datetime) -> int:
        offset = await self._pool.fetchval(query("offset_at_time"), stream_name, partition, at)
        if offset is None:
            raise StreamNotFoundError(stream_name)
        return int(offset)

    async def read_all_page(self, after: GlobalPosition | None, count: int) -> list[RecordedEvent]:
        position = after or GlobalPosition(0, 0)
        rows = await self._pool.fetch(query("read_all_forwards"), str(position.transaction), position.sequence, count)
        # read_all_forwards adds the stream name and partition after RecordedEvent's row layout.
        plain = plain_rows(rows, limit=self.options.max_payload_bytes)  # compressed payloads decompressed
        return [RecordedEvent(row, row[11], row[12]) for row in plain]

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
        for _ in range(3):
            queue = await self._stream_settings(queue_name, StreamType.EPHEMERAL)
            arrays = _event_arrays(queue.compression.apply(messages))[1:]  # queues keep no event ids
            rows = await self._pool.fetch(
                query("enqueue_messages"), queue_name, *arrays, dedupe_keys, correlation_id, delay
            )
            if rows:
                return await self._enqueue_results(queue_name, rows, dedupe_keys)
            self._cached_streams.pop(queue_name, None)
            await self._ensure_queue(queue_name)
        raise StreamNotFoundError(queue_name)

    async def _ensure_queue(self, queue_name: str) -> None:
        """After an enqueue found no queue to write to: create it (as the auto-create rules say), or
        say why it cannot be written."""
        info = await self.describe_stream(queue_name)
        if info is None:
            config = self.options.auto_create_config(queue_name, StreamType.EPHEMERAL)
            if config is None:
                raise StreamNotFoundError(queue_name)
            await self.create_stream(config, AUTO_CREATE_ACTOR)
        elif info.deleted:
            raise StreamDeletedError(queue_name)
        elif info.type is not StreamType.EPHEMERAL:
            raise StreamTypeError(f"{queue_name!r} is a persistent stream: use append, not enqueue")
        elif info.archived:
            raise StreamArchivedError(queue_name)

    async def _enqueue_results(
        self, queue_name: str, rows: list[asyncpg.Record], dedupe_keys: list[str | None]
    ) -> list[EnqueueResult]:
        if all(key is None for key in dedupe_keys):  # the common case: every message stored, in order
            return [EnqueueResult(queue_name, int(row["message_id"])) for row in rows]
        inserted = [row for row in rows if row["message_id"] is not None]
        inserted_by_key = {row["dedupe_key"]: int(row["message_id"]) for row in inserted if row["dedupe_key"]}
        unkeyed = iter(int(row["message_id"]) for row in inserted if row["dedupe_key"] is None)
        results: list[EnqueueResult | None] = []
        claimed: set[str] = set()
        missing: list[str] = []
        for key in dedupe_keys:
            if key is None:
                results.append(EnqueueResult(queue_name, next(unkeyed)))
            elif key in inserted_by_key and key not in claimed:
                claimed.add(key)
                results.append(EnqueueResult(queue_name, inserted_by_key[key]))
            else:
                missing.append(key)
                results.append(None)
        if missing:
            found = await self._pool.fetch(query("pending_dedupe_keys"), rows[0]["stream_id"], missing)
            existing = {row["dedupe_key"]: int(row["message_id"]) for row in found}
            existing.update(inserted_by_key)
            results = [
                result or EnqueueResult(queue_name, existing[key], deduplicated=True)
                for result, key in zip(results, dedupe_keys, strict=True)
            ]
        return [result for result in results if result is not None]

    async def dequeue(self, queue_name: str, max_messages: int, visibility_timeout: timedelta) -> list[QueueMessage]:
        while True:
            rows = await self._pool.fetch(query("dequeue_messages"), queue_name, max_messages, visibility_timeout)
            if not rows:
                await self._ensure_queue_exists(queue_name)
                return []
            limit = self.options.max_payload_bytes
            messages = [_queue_message(row, queue_name, limit) for row in rows if row["message_id"] is not None]
            if rows[0]["dead_lettered"]:
                metrics.record_dead_lettered(queue_name, rows[0]["dead_lettered"])
            if messages or rows[0]["dead_lettered"] == 0:
                return messages
            # Everything we picked was dead-lettered; there may be deliverable messages behind them.

    async def _ensure_queue_exists(self, queue_name: str) -> None:
        info = await self.describe_stream(queue_name)
        if info is None:
            raise StreamNotFoundError(queue_name)
        if info.deleted:
            raise StreamDeletedError(queue_name)
        if info.type is not StreamType.EPHEMERAL:
            raise StreamTypeError(f"{queue_name!r} is a persistent stream: read it, do not dequeue from it")

    async def acknowledge(self, queue_name: str, receipts: list[Receipt]) -> list[Receipt]:
        rows = await self._pool.fetch(
            query("acknowledge_messages"),
            queue_name,
            [receipt.message_id for receipt in receipts],
            [receipt.attempt for receipt in receipts],
        )
        done = {int(row["message_id"]) for row in rows}
        return [receipt for receipt in receipts if receipt.message_id not in done]

    async def nack(self, queue_name: str, receipt: Receipt, delay: timedelta, reason: str) -> bool:
        outcome = await self._pool.fetchrow(
            query("nack_message"), queue_name, receipt.message_id, receipt.attempt, delay, reason
        )
        changed = outcome is not None and outcome["changed"] > 0
        if outcome is not None and changed and outcome["buried"]:
            metrics.record_dead_lettered(queue_name, outcome["buried"])
        if changed and delay <= timedelta(0):
            self._signals.fire(queue_name)
        return bool(changed)

    async def extend(self, queue_name: str, receipt: Receipt, by: timedelta) -> bool:
        row = await self._pool.fetchrow(
            query("extend_lease"), queue_name, receipt.message_id, receipt.attempt, by, MAX_DURATION
        )
        if row is not None and not row["extended"]:
            raise lease_too_long(queue_name, receipt)
        return row is not None

    async def redrive_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> list[int]:
        await self._ensure_queue_exists(queue_name)
        rows = await self._pool.fetch(query("redrive_dead_letters"), queue_name, dead_letter_ids)
        return sorted(int(row["message_id"]) for row in rows)

    async def purge_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> int:
        await self._ensure_queue_exists(queue_name)
        return int(await self._pool.fetchval(query("purge_dead_letters"), queue_name, dead_letter_ids))

    async def queue_depth(self, queue_name: str) -> QueueDepth:
        await self._ensure_queue_exists(queue_name)
        row = await self._pool.fetchrow(query("queue_depth"), queue_name)
        total, in_flight = (int(row["total"]), int(row["in_flight"])) if row is not None else (0, 0)
        return QueueDepth(queue_name, waiting=total - in_flight, in_flight=in_flight)

    async def dead_letters(self, queue_name: str, limit: int) -> list[DeadLetter]:
        rows = await self._pool.fetch(query("list_dead_letters"), queue_name, limit)
        if not rows:
            await self._ensure_queue_exists(queue_name)
        return [_dead_letter(row, queue_name, self.options.max_payload_bytes) for row in rows]


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool release hook. asyncpg's default sends a reset query (UNLISTEN, RESET ALL, ...) on every
    release, a round trip per operation; Sluice's statements leave no session state to reset
    (asyncpg still rolls back an open transaction locally), so nothing is sent."""


@dataclasses.dataclass(frozen=True, slots=True)
class _CachedStream:
    """What writes need to know of a stream, and when it was looked up."""

    type: StreamType
    partitions: int
    compression: CompressionPolicy
    looked_up_at: float


def _check_appendable(name: str, head: asyncpg.Record) -> None:
    """After append_events refused a batch: raise if the stream is a queue, deleted or archived."""
    if head["type"] != StreamType.PERSISTENT.value:
        raise StreamTypeError(f"{name!r} is a queue (an ephemeral stream): use enqueue, not append")
    if head["deleted_at"] is not None:
        raise StreamDeletedError(name)
    if head["archived_at"] is not None:
        raise StreamArchivedError(name)


def _event_arrays(events: PreparedBatch) -> tuple[list[Any], ...]:
    return (
        events.event_ids,
        events.event_types,
        events.schema_versions,
        events.content_types,
        events.payloads,
        events.metadata,
    )


def _stream_infos(rows: list[asyncpg.Record]) -> list[StreamInfo]:
    streams: list[StreamInfo] = []
    partitions: list[PartitionInfo] = []
    for index, row in enumerate(rows):
        partitions.append(
            PartitionInfo(
                partition=row["partition"],
                head=row["next_offset"],
                last_appended_at=row["last_appended_at"],
                first_offset=row["first_offset"],
            )
        )
        if index + 1 == len(rows) or rows[index + 1]["stream_id"] != row["stream_id"]:
            streams.append(
                StreamInfo(
                    name=row["name"],
                    type=StreamType(row["type"]),
                    partitions=row["partitions"],
                    max_attempts=row["max_attempts"],
                    created_at=row["created_at"],
                    delivery=DeliverySemantics(row["delivery"]),
                    compression=Compression(row["compression"]),
                    compression_threshold=row["compression_threshold"],
                    created_by=row["created_by"],
                    archived_at=row["archived_at"],
                    archived_by=row["archived_by"],
                    deleted_at=row["deleted_at"],
                    deleted_by=row["deleted_by"],
                    partition_heads=tuple(partitions),
                )
            )
            partitions = []
    return streams


def _queue_message(row: asyncpg.Record, queue_name: str, payload_limit: int) -> QueueMessage:
    return QueueMessage(
        queue_name=queue_name,
        message_id=row["message_id"],
        event_type=row["event_type"],
        data=decode_payload(row["data"], row["content_type"], limit=payload_limit),
        metadata=pydantic_core.from_json(row["metadata"]),
        correlation_id=row["correlation_id"],
        enqueued_at=row["enqueued_at"],
        attempt=row["attempts"],
        visible_at=row["visible_at"],
        dedupe_key=row["dedupe_key"],
    )


def _dead_letter(row: asyncpg.Record, queue_name: str, payload_limit: int) -> DeadLetter:
    return DeadLetter(
        queue_name=queue_name,
        dead_letter_id=row["dead_letter_id"],
        message_id=row["message_id"],
        event_type=row["event_type"],
        data=decode_payload(row["data"], row["content_type"], limit=payload_limit),
        metadata=pydantic_core.from_json(row["metadata"]),
        correlation_id=row["correlation_id"],
        enqueued_at=row["enqueued_at"],
        attempts=row["attempts"],
        first_delivered_at=row["first_delivered_at"],
        last_delivered_at=row["last_delivered_at"],
        failures=tuple(
            DeliveryFailure(
                attempt=int(failure["attempt"]),
                at=datetime.fromisoformat(failure["at"]),
                reason=str(failure["reason"]),
            )
            for failure in pydantic_core.from_json(row["failures"])
        ),
        dead_lettered_at=row["dead_lettered_at"],
    )


# --------------------------------------------------------------------- the adapter's Backend


class _PostgresConnection:
    """The adapter's resources: the pool and the LISTEN/NOTIFY connection."""

    def __init__(self, database: PostgresDatabase, notifications: NotificationChannel, schema_name: str) -> None:
        self._database = database
        self.notifications = notifications
        self._schema_name = schema_name

    async def check(self) -> BackendCheck:
        async with self._database.acquire() as connection:
            version = await migrations.check_schema(cast(asyncpg.Connection, connection), self._schema_name)
        return BackendCheck(backend="postgresql", schema_name=self._schema_name, schema_version=version)

    async def close(self) -> None:
        await self.notifications.stop()
        await self._database.pool.close()

    def terminate(self) -> None:
        self._database.pool.terminate()


async def open_postgres_backend(dsn: str, options: StoreOptions) -> Backend:
    """Connect, check (or apply) the schema, start listening for appends, and bundle the adapter's parts."""
    schema = options.schema_name
    with translated("connect"):
        connection = await asyncpg.connect(dsn)
        try:
            if options.migrate:
                await migrations.migrate(connection, schema)
            else:
                await migrations.check_schema(connection, schema)
        finally:
            await connection.close()
    pool = await create_translating_pool(
        dsn,
        min_size=options.pool_min_size,
        max_size=options.pool_max_size,
        reset=_keep_session,
        # Every named query is written to have a good generic plan; skipping planning on each
        # call saves 0.3-1 ms per statement (see queries.sql).
        server_settings={
            "search_path": schema,
            "application_name": "sluice",
            "plan_cache_mode": "force_generic_plan",
        },
    )
    database = PostgresDatabase(pool)
    signals = AppendSignals()
    notifications = NotificationChannel(dsn=dsn, channel=f"sluice_{schema}", signals=signals)

    def announce(key: str) -> None:
        """Wake readers of ``key`` here and, through NOTIFY, in every other process."""
        signals.fire(key)
        notifications.appended(key)

    streams = PostgresStreams(pool=pool, options=options, signals=signals, notifications=notifications)
    groups = PostgresConsumerGroups(pool, announce)
    backend = Backend(
        name="postgresql",
        log=streams,
        queues=streams,
        groups=groups,
        retention=PostgresRetentionStorage(pool),
        dead_letters=PostgresGroupDeadLetters(streams, groups, database),
        sagas=PostgresSagaRepository(database),
        replays=PostgresReplayRecords(database),
        signals=signals,
        connection=_PostgresConnection(database, notifications, schema),
        database=database,
    )
    with translated("connect"):
        await notifications.start()
    return backend


class PostgresEventStore(EventStore):
    """An EventStore on PostgreSQL. Open it with ``await sluice.connect("postgresql://...")``.

    Only a constructor (``open``) and two conveniences for tests and tools; everything else is
    ``EventStore``'s, over the backend ``open_postgres_backend`` builds."""

    @classmethod
    async def open(
        cls, dsn: str, options: StoreOptions, registry: EventTypeRegistry | None = None
    ) -> PostgresEventStore:
        """Connect, check (or apply) the schema, and start listening for appends."""
        return cls(await open_postgres_backend(dsn, options), options, registry)

    @property
    def database(self) -> PostgresDatabase:
        """The store's connection pool."""
        assert isinstance(self.backend.database, PostgresDatabase)
        return self.backend.database

    def acquire(self) -> contextlib.AbstractAsyncContextManager[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        """A pooled connection with search_path set to Sluice's schema (for tests and tools)."""
        return self.database.acquire()

    @property
    def notifications(self) -> NotificationChannel:
        """The LISTEN/NOTIFY connection (exposed for health checks and tests)."""
        assert isinstance(self.backend.connection, _PostgresConnection)
        return self.backend.connection.notifications
