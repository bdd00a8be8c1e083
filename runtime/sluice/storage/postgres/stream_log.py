"""The PostgreSQL stream log (the port's ``StreamLog``): streams, appends, partition reads and the global log,
one statement per operation.

How it stays correct under concurrency (docs/design.md explains each choice):
- an append reserves offsets by updating its partition's counter row in the same statement that
  inserts the events, so writers to one partition serialize and offsets are dense and visible in order;
- the global log is read below the oldest running transaction (see read_all_forwards in queries.sql).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from sluice.core.batches import PreparedBatch
from sluice.core.compression import plain_rows
from sluice.core.errors import (
    ConcurrencyError,
    DuplicateEventIdError,
    StreamArchivedError,
    StreamDeletedError,
    StreamNotFoundError,
    StreamTypeError,
)
from sluice.core.events import AppendResult, Direction, EventRow, ExpectedOffset, GlobalPosition
from sluice.core.lifecycle import LifecycleChange
from sluice.core.options import StoreOptions
from sluice.core.partitioning import PartitionSpreader
from sluice.core.streams import StreamConfig, StreamInfo, StreamType
from sluice.core.validation import check_partition_key, check_prepared_events
from sluice.storage.postgres.batch_columns import event_arrays, uniform_column
from sluice.storage.postgres.notifications import NotificationChannel
from sluice.storage.postgres.queries import query
from sluice.storage.postgres.stream_catalog import PostgresStreamCatalog
from sluice.store import AppendRequest


class PostgresStreamLog:
    """Streams and their events on PostgreSQL (``StreamLog``)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        options: StoreOptions,
        catalog: PostgresStreamCatalog,
        notifications: NotificationChannel,
    ) -> None:
        self._pool = pool
        self._options = options
        self._catalog = catalog
        self._notifications = notifications
        self._spreader = PartitionSpreader()

    # ----------------------------------------------------------------- streams

    async def create_stream(self, config: StreamConfig, actor: str | None = None) -> StreamInfo:
        return await self._catalog.create(config, actor)

    async def describe_stream(self, name: str) -> StreamInfo | None:
        return await self._catalog.describe(name)

    async def list_streams(self) -> list[StreamInfo]:
        return await self._catalog.list_streams()

    async def delete_stream(self, name: str) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            stream_id = await connection.fetchval(query("lock_stream_for_delete"), name)
            if stream_id is None:
                return False
            await connection.execute(query("delete_stream_data"), stream_id)
        self._catalog.forget(name)
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
            self._catalog.forget(name)
        return names

    async def set_partitions(self, name: str, partitions: int) -> StreamInfo:
        await self._pool.execute(query("increase_partitions"), name, partitions)
        self._catalog.forget(name)
        info = await self.describe_stream(name)
        if info is None:
            raise StreamNotFoundError(name)
        return info

    # ----------------------------------------------------------------- appends

    async def append(self, request: AppendRequest) -> AppendResult:
        check_partition_key(request.partition_key)  # before a stream is auto-created
        check_prepared_events(
            request.events.schema_versions, request.events.metadata, limit=self._options.max_payload_bytes
        )
        name = request.stream_name
        events = request.events
        expected_next, require_existing, expectation = _expectation(request.expected_offset)
        for _ in range(3):
            stream = await self._catalog.write_settings(name, StreamType.PERSISTENT)
            arguments = event_arrays(stream.compression.apply(events))
            partition = request.route(stream.partitions, self._spreader)
            try:
                first_offset = await self._pool.fetchval(
                    query("append_events"),
                    name,
                    partition,
                    expected_next,
                    require_existing,
                    *arguments,
                    uniform_column(events.correlation_ids),
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
                self._catalog.forget(name)
                if self._options.auto_create_config(name, StreamType.PERSISTENT) is None:
                    raise StreamNotFoundError(name)
                continue
            _check_appendable(name, head)
            if head["next_offset"] is None:  # our partition count was stale
                self._catalog.forget(name)
                continue
            if expected_next is not None or require_existing:
                raise ConcurrencyError(
                    stream_name=name, partition=partition, expected=expectation, head=int(head["next_offset"])
                )
        raise ConcurrencyError(stream_name=name, partition=0, expected="a stable stream", head=0)

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
    ) -> Sequence[EventRow]:
        name = "read_forwards" if direction is Direction.FORWARDS else "read_backwards"
        rows: list[asyncpg.Record] = await self._pool.fetch(query(name), stream_name, partition, start, count)
        # The queries' columns are RecordedEvent's row layout; compressed payloads are decompressed.
        return plain_rows(rows, limit=self._options.max_payload_bytes)

    async def offset_at_time(self, stream_name: str, partition: int, at: datetime) -> int:
        offset = await self._pool.fetchval(query("offset_at_time"), stream_name, partition, at)
        if offset is None:
            raise StreamNotFoundError(stream_name)
        return int(offset)

    async def read_all_page(self, after: GlobalPosition | None, count: int) -> Sequence[EventRow]:
        position = after or GlobalPosition(0, 0)
        rows: list[asyncpg.Record] = await self._pool.fetch(
            query("read_all_forwards"), str(position.transaction), position.sequence, count
        )
        # read_all_forwards adds the stream name and partition after RecordedEvent's row layout.
        return plain_rows(rows, limit=self._options.max_payload_bytes)  # compressed payloads decompressed


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


def _check_appendable(name: str, head: asyncpg.Record) -> None:
    """After append_events refused a batch: raise if the stream is a queue, deleted or archived."""
    if head["type"] != StreamType.PERSISTENT.value:
        raise StreamTypeError(f"{name!r} is a queue (an ephemeral stream): use enqueue, not append")
    if head["deleted_at"] is not None:
        raise StreamDeletedError(name)
    if head["archived_at"] is not None:
        raise StreamArchivedError(name)
