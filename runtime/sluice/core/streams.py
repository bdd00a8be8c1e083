"""Stream configuration and description: what a stream is, as callers create and see it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluice.core.compression import DEFAULT_COMPRESSION_THRESHOLD, Compression, CompressionPolicy
from sluice.core.names import validate_stream_name
from sluice.core.validation import SluiceModel


class StreamType(enum.StrEnum):
    """PERSISTENT streams are append-only logs read by offset; EPHEMERAL streams are queues."""

    PERSISTENT = "persistent"
    EPHEMERAL = "ephemeral"


class DeliverySemantics(enum.StrEnum):
    """How a persistent stream's consumer groups share its events.

    BROADCAST: within a group each partition has one owner, which receives all its events in order.
    QUEUE: the members of a group share every partition; each event goes to one member (at least
    once across crashes), so work spreads over members even on a one-partition stream. Either way
    every group receives every event: groups are independent.
    """

    BROADCAST = "broadcast"
    QUEUE = "queue"


DEFAULT_MAX_ATTEMPTS = 5


class StreamConfig(SluiceModel):
    """How a stream is created. Partitions may later be increased, never decreased."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: StreamType = StreamType.PERSISTENT
    partitions: Annotated[int, Field(ge=1, le=1024)] = 1
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = DEFAULT_MAX_ATTEMPTS
    """Queues only: deliveries before a message moves to the dead-letter queue."""
    delivery: DeliverySemantics = DeliverySemantics.BROADCAST
    """Persistent streams: how consumer groups deliver its events (see DeliverySemantics)."""
    compression: Compression = Compression.NONE
    """How payloads over ``compression_threshold`` bytes are stored (readers always get the original
    bytes back). Fixed at creation: creating the stream again with another setting changes nothing."""
    compression_threshold: Annotated[int, Field(ge=0, le=256 * 1024 * 1024)] = DEFAULT_COMPRESSION_THRESHOLD

    @property
    def compression_policy(self) -> CompressionPolicy:
        """What appends and enqueues to this stream compress."""
        return CompressionPolicy(self.compression, self.compression_threshold)

    @field_validator("name")
    @classmethod
    def _name_is_valid(cls, value: str) -> str:
        return validate_stream_name(value)


def same_shape(existing: StreamConfig, wanted: StreamConfig) -> bool:
    """Whether creating ``wanted`` over ``existing`` is a no-op (type, partitions and delivery match)."""
    return (existing.type, existing.partitions, existing.delivery) == (wanted.type, wanted.partitions, wanted.delivery)


def shape_description(config: StreamConfig) -> str:
    """How a stream that already exists is, for StreamAlreadyExistsError."""
    text = f"it is {config.type.value} with {config.partitions} partition(s)"
    if config.delivery is not DeliverySemantics.BROADCAST:
        text += f" and {config.delivery.value} delivery"
    return text


class PartitionInfo(BaseModel):
    """One partition's position: ``head`` is the next offset to be assigned (the log end offset),
    ``first_offset`` the oldest one retained (the log start offset)."""

    model_config = ConfigDict(frozen=True)

    partition: int
    head: int
    last_appended_at: datetime | None
    first_offset: int = 0
    """The oldest offset still stored (retention prunes below it); ``head - first_offset`` events remain."""


class StreamInfo(BaseModel):
    """A stream as it is stored, with its partitions' heads."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: StreamType
    partitions: int
    max_attempts: int
    created_at: datetime
    delivery: DeliverySemantics = DeliverySemantics.BROADCAST
    partition_heads: tuple[PartitionInfo, ...] = ()
    compression: Compression = Compression.NONE
    compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD
    created_by: str | None = None
    """Who created the stream (the ``actor`` given to create_stream, or the one whose append or
    enqueue created it); None when not given."""
    archived_at: datetime | None = None
    """When the stream was archived (read-only); None while it is writable."""
    archived_by: str | None = None
    deleted_at: datetime | None = None
    """When the stream was soft-deleted (hidden, restorable); None unless it was."""
    deleted_by: str | None = None

    @property
    def archived(self) -> bool:
        """Whether the stream is read-only: appends and enqueues are refused with StreamArchivedError."""
        return self.archived_at is not None

    @property
    def deleted(self) -> bool:
        """Whether the stream is soft-deleted (only list_streams(include_deleted=True) shows it)."""
        return self.deleted_at is not None

    @property
    def config(self) -> StreamConfig:
        """The configuration this stream was created with."""
        return StreamConfig(
            name=self.name,
            type=self.type,
            partitions=self.partitions,
            max_attempts=self.max_attempts,
            delivery=self.delivery,
            compression=self.compression,
            compression_threshold=self.compression_threshold,
        )

    @property
    def head(self) -> int:
        """Partition 0's head: for a single-partition stream, its number of events appended."""
        return self.partition_heads[0].head if self.partition_heads else 0
