"""Events as written (EventData, kept in ``event_data.py`` below the type registry), as read back
(RecordedEvent), and what append returns."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Protocol

from pydantic_core import from_json as _from_json

from sluice.core.event_data import EventData
from sluice.core.event_types import EventTypeRegistry, default_registry

__all__ = [
    "BINARY_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "AppendResult",
    "Direction",
    "EventData",
    "EventRow",
    "ExpectedOffset",
    "GlobalPosition",
    "RecordedEvent",
    "global_log_event",
]

JSON_CONTENT_TYPE: Final = "application/json"
BINARY_CONTENT_TYPE: Final = "application/octet-stream"


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


class EventRow(Protocol):
    """The stored columns of an event, in this order: offset, event_id, event_type, schema_version,
    content_type, payload, metadata (JSON text or a mapping), correlation_id, timestamp, transaction,
        sequence. The PostgreSQL backend hands its database rows over as they are."""

    def __getitem__(self, index: int, /) -> Any: ...


class RecordedEvent:
    """An event as stored, with the offset and timestamp the server assigned.

    It wraps the stored row and decodes fields on access (``data`` and ``metadata`` once), because
    reads and subscriptions build one per event: it costs one small object until it is used.
    """

    __slots__ = ("_data", "_metadata", "_row", "partition", "stream_name")

    def __init__(self, row: EventRow, stream_name: str, partition: int) -> None:
        self._row = row
        self.stream_name = stream_name
        self.partition = partition
        self._data: Any = None  # decoded on first access (a JSON null is simply decoded again)
        self._metadata: Any = None

    @property
    def offset(self) -> int:
        return int(self._row[0])

    @property
    def event_id(self) -> uuid.UUID:
        value: uuid.UUID = self._row[1]
        return value

    @property
    def event_type(self) -> str:
        return str(self._row[2])

    @property
    def schema_version(self) -> int:
        return int(self._row[3])

    @property
    def content_type(self) -> str:
        return str(self._row[4])

    @property
    def payload(self) -> bytes:
        """The stored bytes of the payload, undecoded."""
        return bytes(self._row[5])

    @property
    def data(self) -> Any:
        """The payload: JSON decoded, or ``bytes`` for binary events."""
        data = self._data
        if data is None:
            row = self._row
            data = self._data = _from_json(row[5]) if row[4] == "application/json" else bytes(row[5])
        return data

    @property
    def metadata(self) -> Mapping[str, Any]:
        metadata: Mapping[str, Any] | None = self._metadata
        if metadata is None:
            stored = self._row[6]
            metadata = self._metadata = _from_json(stored) if isinstance(stored, str | bytes) else stored
        return metadata

    @property
    def correlation_id(self) -> str | None:
        value: str | None = self._row[7]
        return value

    @property
    def timestamp(self) -> datetime:
        value: datetime = self._row[8]
        return value

    @property
    def global_position(self) -> GlobalPosition:
        """Where this event stands in the log of all streams."""
        return GlobalPosition(int(self._row[9]), int(self._row[10]))

    def decode(self, registry: EventTypeRegistry | None = None) -> Any:
        """Rebuild the registered class instance for this event, upcasting old schema versions."""
        return (registry or default_registry).decode(self.event_type, self.schema_version, self.data)

    def _key(self) -> tuple[str, int, int, uuid.UUID]:
        return (self.stream_name, self.partition, self.offset, self.event_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordedEvent) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"RecordedEvent(stream_name={self.stream_name!r}, partition={self.partition}, offset={self.offset}, "
            f"event_type={self.event_type!r}, event_id={self.event_id}, timestamp={self.timestamp.isoformat()})"
        )


def global_log_event(row: EventRow) -> RecordedEvent:
    """A row of the global log (RecordedEvent's layout, then its stream name and partition) as its event."""
    return RecordedEvent(row, row[11], row[12])


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
