"""Events as written (EventData), as read back (RecordedEvent), and what append returns."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sluice.event_types import EventTypeRegistry

JSON_CONTENT_TYPE: Final = "application/json"
BINARY_CONTENT_TYPE: Final = "application/octet-stream"


@dataclasses.dataclass(frozen=True, slots=True)
class EventData:
    """An event to write, given explicitly. Pydantic models and dataclasses are converted to this.

    ``data`` is anything JSON can hold, or ``bytes`` for an opaque payload.
    ``event_id`` makes appends idempotent: a stream stores each id once.
    """

    event_type: str
    data: Any
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    event_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    schema_version: int = 1


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class GlobalPosition:
    """A position in the log of all streams. Ordered; opaque to callers except for comparison.

    On PostgreSQL it is (writing transaction id, sequence): readers only move past a transaction
    once no older transaction can still commit, so no event that commits late is ever skipped.
    """

    transaction: int
    sequence: int

    def __str__(self) -> str:
        return f"{self.transaction}.{self.sequence}"

    @classmethod
    def parse(cls, text: str) -> GlobalPosition:
        """Read a position written by ``str()``."""
        transaction, _, sequence = text.partition(".")
        return cls(int(transaction), int(sequence))


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored, with the offset and timestamp the server assigned."""

    stream_name: str
    partition: int
    offset: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    data: Any
    metadata: Mapping[str, Any]
    correlation_id: str | None
    timestamp: datetime
    global_position: GlobalPosition
    content_type: str = JSON_CONTENT_TYPE

    def decode(self, registry: EventTypeRegistry | None = None) -> Any:
        """Rebuild the registered class instance for this event, upcasting old schema versions."""
        from sluice.event_types import default_registry  # noqa: PLC0415  (avoids an import cycle)

        return (registry or default_registry).decode(self.event_type, self.schema_version, self.data)


@dataclasses.dataclass(frozen=True, slots=True)
class AppendResult:
    """What append wrote: the offsets assigned, in the order the events were given.

    ``deduplicated`` is true when every event id was already in the stream, so nothing new was
    stored and the original offsets are returned.
    """

    stream_name: str
    partitions: tuple[int, ...]
    offsets: tuple[int, ...]
    deduplicated: bool = False

    @property
    def first_offset(self) -> int:
        return self.offsets[0]

    @property
    def last_offset(self) -> int:
        return self.offsets[-1]


class ExpectedOffset(enum.Enum):
    """Symbolic expectations for optimistic concurrency. An ``int`` means: the offset of the last
    event the caller has seen in the partition (so the first new event gets that offset plus one)."""

    ANY = "any"
    NO_STREAM = "no_stream"
    """The partition holds no event yet (the stream may not exist)."""
    STREAM_EXISTS = "stream_exists"
    """The partition holds at least one event."""


class Direction(enum.Enum):
    """Which way read_stream walks the log."""

    FORWARDS = "forwards"
    BACKWARDS = "backwards"
