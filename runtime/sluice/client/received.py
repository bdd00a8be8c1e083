"""What the client hands out: events and queue messages as received from the server."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic_core

from sluice.core.event_types import EventTypeRegistry, default_registry
from sluice.core.events import JSON_CONTENT_TYPE
from sluice.rpc.v1 import sluice_pb2


def decode_data(content_type: str, data: bytes) -> Any:
    return pydantic_core.from_json(data) if content_type == JSON_CONTENT_TYPE else bytes(data)


def decode_metadata(metadata_json: str) -> Mapping[str, Any]:
    decoded: Mapping[str, Any] = pydantic_core.from_json(metadata_json) if metadata_json else {}
    return decoded


@dataclasses.dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A stored event, as a server sent it."""

    stream_name: str
    partition: int
    offset: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    content_type: str
    payload: bytes
    metadata: Mapping[str, Any]
    correlation_id: str | None
    timestamp: datetime
    global_position: str

    @classmethod
    def from_message(cls, message: sluice_pb2.RecordedEvent) -> ReceivedEvent:
        return cls(**event_fields(message))

    @property
    def data(self) -> Any:
        """The payload: JSON decoded, or ``bytes`` for binary events."""
        return decode_data(self.content_type, self.payload)

    def decode(self, registry: EventTypeRegistry | None = None) -> Any:
        """Rebuild the registered class instance for this event, upcasting old schema versions."""
        return (registry or default_registry).decode(self.event_type, self.schema_version, self.data)


def event_fields(message: sluice_pb2.RecordedEvent) -> dict[str, Any]:
    """The fields of a ReceivedEvent from its wire form."""
    return {
        "stream_name": message.stream_name,
        "partition": message.partition,
        "offset": message.offset,
        "event_id": uuid.UUID(message.event_id),
        "event_type": message.event_type,
        "schema_version": message.schema_version,
        "content_type": message.content_type,
        "payload": message.data,
        "metadata": decode_metadata(message.metadata_json),
        "correlation_id": message.correlation_id or None,
        "timestamp": message.timestamp.ToDatetime(tzinfo=UTC),
        "global_position": message.global_position,
    }
