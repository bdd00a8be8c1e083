"""Stream configuration and description: what a stream is, as callers create and see it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluice.names import validate_stream_name
from sluice.validation import SluiceModel


class StreamType(enum.StrEnum):
    """PERSISTENT streams are append-only logs read by offset; EPHEMERAL streams are queues."""

    PERSISTENT = "persistent"
    EPHEMERAL = "ephemeral"


DEFAULT_MAX_ATTEMPTS = 5


class StreamConfig(SluiceModel):
    """How a stream is created. Partitions may later be increased, never decreased."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: StreamType = StreamType.PERSISTENT
    partitions: Annotated[int, Field(ge=1, le=1024)] = 1
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = DEFAULT_MAX_ATTEMPTS
    """Queues only: deliveries before a message moves to the dead-letter queue."""

    @field_validator("name")
    @classmethod
    def _name_is_valid(cls, value: str) -> str:
        return validate_stream_name(value)


class PartitionInfo(BaseModel):
    """One partition's position: ``head`` is the next offset to be assigned (the log end offset)."""

    model_config = ConfigDict(frozen=True)

    partition: int
    head: int
    last_appended_at: datetime | None


class StreamInfo(BaseModel):
    """A stream as it is stored, with its partitions' heads."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: StreamType
    partitions: int
    max_attempts: int
    created_at: datetime
    partition_heads: tuple[PartitionInfo, ...] = ()

    @property
    def config(self) -> StreamConfig:
        """The configuration this stream was created with."""
        return StreamConfig(name=self.name, type=self.type, partitions=self.partitions, max_attempts=self.max_attempts)

    @property
    def head(self) -> int:
        """Partition 0's head: for a single-partition stream, its number of events appended."""
        return self.partition_heads[0].head if self.partition_heads else 0
