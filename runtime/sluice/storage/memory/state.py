"""What the in-memory backend's parts share: its streams (partitions, messages, dead letters), the global log
and the append signals, in one ``MemoryState`` that the store, its consumer groups and its retention are each
given, so that none of them reaches into another's private members.
"""

from __future__ import annotations

import bisect
import dataclasses
import uuid
from datetime import UTC, datetime

from sluice.core.events import GlobalPosition
from sluice.core.messages import DeadLetter, DeliveryFailure
from sluice.core.prepared_batches import PreparedEvent
from sluice.core.signals import AppendSignals
from sluice.core.streams import PartitionInfo, StreamConfig, StreamInfo
from sluice.storage.memory.log import OffsetLog

__all__ = [
    "GlobalEntry",
    "MemoryPartition",
    "MemoryState",
    "MemoryStream",
    "StoredEvent",
    "StoredMessage",
    "offset_at_time",
]


@dataclasses.dataclass(slots=True)
class StoredEvent:
    offset: int
    prepared: PreparedEvent
    correlation_id: str | None
    timestamp: datetime
    global_position: GlobalPosition


@dataclasses.dataclass(slots=True)
class MemoryPartition:
    events: OffsetLog[StoredEvent] = dataclasses.field(default_factory=OffsetLog)
    """Indexed by offset; ``len(events)`` is the head; retention drops the oldest (memory_log.py)."""
    last_appended_at: datetime | None = None


@dataclasses.dataclass(slots=True)
class StoredMessage:
    message_id: int
    prepared: PreparedEvent
    correlation_id: str | None
    dedupe_key: str | None
    enqueued_at: datetime
    visible_at: datetime
    attempts: int = 0
    first_delivered_at: datetime | None = None
    last_delivered_at: datetime | None = None
    failures: list[DeliveryFailure] = dataclasses.field(default_factory=list)
    last_failed_attempt: int = 0

    def record_expired_lease(self) -> None:
        if self.attempts > self.last_failed_attempt:
            self.failures.append(DeliveryFailure(self.attempts, self.visible_at, "visibility timeout expired"))
            self.last_failed_attempt = self.attempts


@dataclasses.dataclass(slots=True)
class MemoryStream:
    serial: int
    """Unique per created stream, so that a stream deleted and created again starts afresh."""
    config: StreamConfig
    created_at: datetime
    partitions: list[MemoryPartition]
    created_by: str | None = None
    archived_at: datetime | None = None
    archived_by: str | None = None
    deleted_at: datetime | None = None
    deleted_by: str | None = None
    event_ids: dict[uuid.UUID, tuple[int, int]] = dataclasses.field(default_factory=dict)
    messages: dict[int, StoredMessage] = dataclasses.field(default_factory=dict)
    dead_letters: list[DeadLetter] = dataclasses.field(default_factory=list)
    buried: dict[int, StoredMessage] = dataclasses.field(default_factory=dict)
    """The dead letters' original messages, by dead-letter id: what a redrive puts back."""

    def info(self) -> StreamInfo:
        return StreamInfo(
            name=self.config.name,
            type=self.config.type,
            partitions=self.config.partitions,
            max_attempts=self.config.max_attempts,
            created_at=self.created_at,
            delivery=self.config.delivery,
            compression=self.config.compression,
            compression_threshold=self.config.compression_threshold,
            created_by=self.created_by,
            archived_at=self.archived_at,
            archived_by=self.archived_by,
            deleted_at=self.deleted_at,
            deleted_by=self.deleted_by,
            partition_heads=tuple(
                PartitionInfo(
                    partition=index,
                    head=len(partition.events),
                    last_appended_at=partition.last_appended_at,
                    first_offset=partition.events.first_offset,
                )
                for index, partition in enumerate(self.partitions)
            ),
        )


@dataclasses.dataclass(slots=True)
class GlobalEntry:
    position: GlobalPosition
    stream: MemoryStream
    partition: int
    offset: int


class MemoryState:
    """The streams by name, the global log and the signals of one in-memory store."""

    def __init__(self, signals: AppendSignals) -> None:
        self.streams: dict[str, MemoryStream] = {}
        self.global_log: list[GlobalEntry] = []
        self.signals = signals

    def forget_pruned(self) -> None:
        """Drop the global log's entries of events retention pruned (their offsets are now below
        their partition's first offset)."""
        self.global_log = [
            entry
            for entry in self.global_log
            if entry.offset >= entry.stream.partitions[entry.partition].events.first_offset
        ]


def offset_at_time(stream: MemoryStream, partition: int, at: datetime) -> int:
    """The first offset of the partition appended at or after ``at`` (its head if none)."""
    events = stream.partitions[partition].events
    if at.tzinfo is None:  # a naive time is UTC, as PostgreSQL's driver reads it
        at = at.replace(tzinfo=UTC)
    # Offsets below first_offset were pruned: the search starts at the oldest one retained.
    return bisect.bisect_left(events, at, lo=events.first_offset, key=lambda stored: stored.timestamp)
