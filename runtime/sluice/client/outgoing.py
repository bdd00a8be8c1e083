"""Events and messages to send: pydantic models, dataclasses or EventData, encoded for the wire."""

from __future__ import annotations

from collections.abc import Sequence

import pydantic_core

from sluice.core.errors import InvalidArgumentError
from sluice.core.event_data import give_event_ids
from sluice.core.event_types import EventTypeRegistry
from sluice.core.events import BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE, EventData
from sluice.core.payloads import encode_metadata, json_with_constants, refuse_non_finite_numbers
from sluice.rpc.v1 import sluice_pb2


def event_message(event: object, registry: EventTypeRegistry) -> sluice_pb2.EventToWrite:
    """The wire form of one event (the server validates it again, as the library does)."""
    return _wire_event(registry.to_event_data(event))


def _wire_event(data: EventData) -> sluice_pb2.EventToWrite:
    content = data.data
    if isinstance(content, (bytes, bytearray, memoryview)):  # a tuple: 4x faster than a union
        payload, content_type = bytes(content), BINARY_CONTENT_TYPE
    else:
        try:
            payload, content_type = json_with_constants(content), JSON_CONTENT_TYPE
        except pydantic_core.PydanticSerializationError as error:
            raise InvalidArgumentError(f"data of event type {data.event_type!r} is not JSON-serializable") from error
        refuse_non_finite_numbers(payload, "data", event_type=data.event_type)
    metadata = encode_metadata(data.metadata) if data.metadata else ""
    return sluice_pb2.EventToWrite(
        event_id=str(data.event_id),
        event_type=data.event_type,
        content_type=content_type,
        data=payload,
        metadata_json=metadata,
        schema_version=data.schema_version,
    )


def event_messages(events: Sequence[object] | object, registry: EventTypeRegistry) -> list[sluice_pb2.EventToWrite]:
    batch = list(events) if isinstance(events, list | tuple) else [events]
    converted = [registry.to_event_data(event) for event in batch]
    give_event_ids(converted)
    return [_wire_event(data) for data in converted]
