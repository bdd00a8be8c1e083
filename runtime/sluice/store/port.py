"""The storage port: the narrow interfaces a storage adapter (memory, PostgreSQL) hands out.

Each interface is what one caller needs and nothing more: the ``EventStore`` facade drives the stream
log and the queues, the consumer-group service the group storage, retention its storage, and so on.
Their inputs are already validated and prepared (the facade and the services check arguments once);
adapters store and fetch. ``store/backend.py`` bundles one adapter's parts into a ``Backend``.

The values these interfaces take and return live in ``store/values/``; the contracts of sagas, replays
and group dead letters, which check their own arguments, and of projection checkpoints are the abstract
classes of ``store/contracts/``.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from sluice.core.batches import PreparedBatch
from sluice.core.errors import InvalidArgumentError
from sluice.core.events import AppendResult, Direction, EventRow, ExpectedOffset, GlobalPosition, RecordedEvent
from sluice.core.lifecycle import LifecycleChange
from sluice.core.messages import DeadLetter, EnqueueResult, QueueDepth, QueueMessage, Receipt
from sluice.core.partitioning import PartitionSpreader, partition_for_key
from sluice.core.streams import StreamConfig, StreamInfo
from sluice.store.contracts.projection_checkpoints import CheckpointStore
from sluice.store.values.consumer_group_options import StartPosition
from sluice.store.values.consumer_groups import (
    Assignment,
    Claim,
    ClaimAcknowledgement,
    GroupDescription,
    GroupSummary,
    Heartbeat,
    PartitionCommit,
)
from sluice.store.values.retention import DeletedBatch, GroupPosition, RetentionPolicy


@dataclasses.dataclass(frozen=True, slots=True)
class BackendCheck:
    """What ``EventStore.check_backend()`` found: the backend can serve (for PostgreSQL: the database
    answers and its schema is at this Sluice's version)."""

    backend: str
    """``"postgresql"`` or ``"memory"``."""
    schema_name: str | None = None
    schema_version: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AppendRequest:
    """A validated append: where it goes and what it must find there."""

    stream_name: str
    events: PreparedBatch
    expected_offset: int | ExpectedOffset
    correlation_id: str | None
    partition_key: str | None
    partition: int | None

    def route(self, partitions: int, spreader: PartitionSpreader) -> int:
        """The partition this append goes to among ``partitions``: explicit, by key, or spread round-robin."""
        if self.partition is not None:
            if self.partition >= partitions:
                raise InvalidArgumentError(
                    f"stream {self.stream_name!r} has {partitions} partition(s); "
                    f"partition {self.partition} does not exist"
                )
            return self.partition
        if self.partition_key is not None:
            return partition_for_key(self.partition_key, partitions)
        return spreader.next_partition(partitions)


class StreamLog(Protocol):
    """Streams and their events: the persistent side of the store."""

    async def create_stream(self, config: StreamConfig, actor: str | None = None) -> StreamInfo: ...

    async def describe_stream(self, name: str) -> StreamInfo | None:
        """The stream as stored, soft-deleted or not (callers check ``deleted``)."""
        ...

    async def list_streams(self) -> list[StreamInfo]:
        """Every stream, soft-deleted ones included, ordered by name."""
        ...

    async def delete_stream(self, name: str) -> bool: ...

    async def change_lifecycle(self, name: str, change: LifecycleChange) -> StreamInfo | None:
        """Apply ``change`` if it applies (archive: a live stream not archived yet; unarchive: an
        archived one; soft delete: a stream not deleted yet; restore: one deleted within the grace
        period) and return the stream as it then is; None if there is no stream of that name.
        Archive and soft delete must wait for appends and enqueues in flight and make every later
        one see the change (each adapter says how)."""
        ...

    async def purge_deleted_streams(self, older_than: timedelta) -> list[str]:
        """Hard-delete the streams soft-deleted more than ``older_than`` ago; their names."""
        ...

    async def set_partitions(self, name: str, partitions: int) -> StreamInfo: ...

    async def append(self, request: AppendRequest) -> AppendResult: ...

    async def read_page(
        self, stream_name: str, partition: int, start: int, direction: Direction, count: int
    ) -> Sequence[EventRow]:
        """Up to ``count`` stored rows of a partition from offset ``start`` on (forwards: the first at or
        after it; backwards: the last at or before it), in RecordedEvent's row layout with compressed
        payloads decompressed. Rows, not events: readers wrap each row as they hand it out (a
        RecordedEvent per row, or a consumer group's own event class), so a page of a thousand
        wrapped events is never held at once."""
        ...

    async def offset_at_time(self, stream_name: str, partition: int, at: datetime) -> int: ...

    async def read_all_page(self, after: GlobalPosition | None, count: int) -> Sequence[EventRow]:
        """Up to ``count`` rows of the global log after ``after``, in commit order: RecordedEvent's row
        layout followed by the stream name (column 11) and the partition (column 12)."""
        ...


class QueueStorage(Protocol):
    """Queues (ephemeral streams): messages, leases and the queue's own dead letters."""

    async def enqueue(
        self,
        queue_name: str,
        messages: PreparedBatch,
        dedupe_keys: list[str | None],
        delay: timedelta,
        correlation_id: str | None,
    ) -> list[EnqueueResult]: ...

    async def dequeue(
        self, queue_name: str, max_messages: int, visibility_timeout: timedelta
    ) -> list[QueueMessage]: ...

    async def acknowledge(self, queue_name: str, receipts: list[Receipt]) -> list[Receipt]:
        """Finish messages; returns the receipts that were stale."""
        ...

    async def nack(self, queue_name: str, receipt: Receipt, delay: timedelta, reason: str) -> bool: ...

    async def extend(self, queue_name: str, receipt: Receipt, by: timedelta) -> bool: ...

    async def dead_letters(self, queue_name: str, limit: int) -> list[DeadLetter]: ...

    async def queue_depth(self, queue_name: str) -> QueueDepth: ...

    async def redrive_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> list[int]: ...

    async def purge_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> int: ...


class GroupStorage(Protocol):
    """Storage of consumer groups (PostgreSQL in one transaction per call, memory atomically); the
    member loop and the admin API (``sluice.services.consumers``) are written once on top of it."""

    async def heartbeat(
        self, stream_name: str, group_id: str, heartbeat: Heartbeat, start: StartPosition
    ) -> Assignment:
        """Join, stay alive or leave (creating the group on first join), rebalancing as needed."""
        ...

    async def commit(
        self, stream_name: str, group_id: str, consumer_id: str, commits: Sequence[PartitionCommit]
    ) -> None:
        """Commit offsets conditional on ownership and epoch. Raises InvalidArgumentError for an
        offset beyond the head (nothing committed) and FencedError for partitions not owned."""
        ...

    async def claim(
        self,
        stream_name: str,
        group_id: str,
        *,
        consumer_id: str,
        instance_id: str,
        count: int,
        lease: timedelta,
        first_partition: int,
    ) -> Claim | None:
        """QUEUE delivery: lease the next events to this member — a claim whose lease ran out
        first, else up to ``count`` unclaimed events of a partition (trying partitions in turn from
        ``first_partition``). None when there is nothing to claim."""
        ...

    async def acknowledge(
        self, stream_name: str, group_id: str, acknowledgements: Sequence[ClaimAcknowledgement]
    ) -> builtins.list[ClaimAcknowledgement]:
        """QUEUE delivery: record processed events and advance committed offsets over the
        contiguous finished claims. Applies what it can and returns the acknowledgements refused
        because their claim was taken over by another member (or dropped by a reset)."""
        ...

    async def describe(self, stream_name: str, group_id: str) -> GroupDescription | None: ...

    async def list(self) -> builtins.list[GroupSummary]: ...

    async def reset(self, stream_name: str, group_id: str, target: StartPosition, force: bool) -> GroupDescription:
        """Move every partition's committed offset; refused (GroupActiveError) while members are
        active unless ``force``, which fences them by bumping every epoch."""
        ...

    async def delete(self, stream_name: str, group_id: str, force: bool) -> bool: ...


class RetentionStorage(Protocol):
    """Retention's storage operations (``sluice.services.retention``)."""

    async def delete_before(self, stream_name: str, partition: int, before: int, limit: int) -> DeletedBatch | None:
        """Delete at most ``limit`` of the partition's oldest events, all below offset ``before``, and
        move its first offset up, in one short transaction. None when the stream or partition is gone."""
        ...

    async def byte_cutoffs(self, stream_name: str, max_bytes: int) -> dict[int, int]:
        """Per partition, the offset below which events do not fit in the stream's newest ``max_bytes``
        payload bytes (partitions with nothing to prune are left out)."""
        ...

    async def group_positions(self, stream_name: str) -> list[GroupPosition]:
        """Every consumer group of the stream, per partition, with when it was last active."""
        ...

    async def list_policies(self) -> list[RetentionPolicy]: ...

    async def save_policy(self, policy: RetentionPolicy) -> None:
        """Create or replace the policy of ``policy.pattern`` (its last run time is kept)."""
        ...

    async def delete_policy(self, pattern: str) -> bool: ...

    async def claim_policy_run(self, pattern: str, now: datetime) -> bool:
        """Record that the policy runs at ``now`` if its cleanup interval has passed since its last run;
        False when it has not (or another worker claimed this run)."""
        ...


class SqlDatabase(Protocol):
    """The adapter's SQL database, for services that run their own SQL in it (same-database projections:
    the handlers' writes and the checkpoint in one transaction), and what those projections keep and read
    there. Only the PostgreSQL adapter has one; its connections are its driver's (``SqlConnection`` names
    what Sluice uses of them)."""

    def acquire(self) -> AbstractAsyncContextManager[Any]:
        """A pooled connection (a ``SqlConnection``) with the store's schema on its search path; driver
        errors escaping the block are translated into Sluice errors."""
        ...

    def projection_checkpoints(self) -> CheckpointStore:
        """Projection checkpoints kept in this database (same-database mode)."""
        ...

    async def read_projection_sources(
        self, sources: Sequence[str], after: GlobalPosition, limit: int
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events of the streams ``sources`` after ``after``, in global log order, below the
        oldest running transaction (as ``read_all``: an event that commits late is never skipped)."""
        ...

    async def projection_sources_behind(
        self, sources: Sequence[str], after: GlobalPosition
    ) -> tuple[int, datetime | None]:
        """How many events of ``sources`` come after ``after`` (up to the newest committed one), and when
        the first of them was stored (None: none)."""
        ...

    async def projection_sources_head(self, sources: Sequence[str]) -> GlobalPosition | None:
        """The position of the last readable event of ``sources`` (None: they have none)."""
        ...


class BackendConnection(Protocol):
    """The adapter's resources as a whole: readiness, closing, and abandoning them at shutdown."""

    async def check(self) -> BackendCheck:
        """Whether the adapter can serve now (MigrationError, or an unavailable error, when not)."""
        ...

    async def close(self) -> None:
        """Release connections and stop background tasks (called once)."""
        ...

    def terminate(self) -> None:
        """Drop every connection at once, without waiting (a shutdown whose close timed out)."""
        ...
