"""Conversions between the protobuf messages of ``sluice.v1`` and Sluice's own types.

Payloads travel as bytes with a content type: JSON payloads are parsed here (and re-encoded by the
store, which validates them), binary ones pass through. Malformed input raises InvalidArgumentError.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic_core
from google.protobuf import duration_pb2, timestamp_pb2
from pydantic_core import core_schema

from sluice.core.errors import InvalidArgumentError
from sluice.core.event_data import new_event_ids
from sluice.core.events import (
    BINARY_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    Direction,
    EventData,
    ExpectedOffset,
    RecordedEvent,
)
from sluice.core.messages import QueueMessage
from sluice.rpc.request_limits import checked_offset, duration_value, timestamp_value
from sluice.rpc.v1 import sluice_pb2

SUPPORTED_CONTENT_TYPES = (JSON_CONTENT_TYPE, BINARY_CONTENT_TYPE)
_PLAIN_CONTENT_TYPES = frozenset(("", JSON_CONTENT_TYPE))
"""A wire event's content type when its payload is JSON (empty: the default)."""
MAX_SCHEMA_VERSION = 2**31 - 1
"""A schema version is an integer in the database."""

_EXPECTED_STATES = {
    sluice_pb2.EXPECTED_STATE_ANY: ExpectedOffset.ANY,
    sluice_pb2.EXPECTED_STATE_NO_STREAM: ExpectedOffset.NO_STREAM,
    sluice_pb2.EXPECTED_STATE_STREAM_EXISTS: ExpectedOffset.STREAM_EXISTS,
}


_EVENT_IDS = pydantic_core.SchemaValidator(core_schema.list_schema(core_schema.uuid_schema()))
"""Parses a list of UUID texts in one call (about 8x faster per id than ``uuid.UUID``; profiled, parsing the
ids was half of converting an appended batch)."""


def events_data_from_messages(messages: Sequence[sluice_pb2.EventToWrite]) -> list[EventData]:
    """EventData for each wire event of one request (as ``event_data_from_message``, the ids parsed together)."""
    texts = [message.event_id for message in messages]
    given = [text for text in texts if text]
    try:
        parsed = _EVENT_IDS.validate_python(given)
    except pydantic_core.ValidationError:
        parsed = [_event_id(text) for text in given]  # uuid.UUID reads a few more forms, or says which is wrong
    plain = _plain_json_events(messages, parsed)
    if plain is not None:
        return plain
    ids = iter(parsed)
    return [
        event_data_from_message(message, event_id=next(ids) if text else None)
        for message, text in zip(messages, texts, strict=True)
    ]


def _plain_json_events(
    messages: Sequence[sluice_pb2.EventToWrite], given_ids: list[uuid.UUID]
) -> list[EventData] | None:
    """The usual request converted column by column, as ``event_data_from_message`` converts each event: every
    event JSON without metadata, a schema version in range, and ids given for all or none. None for any other
    request, or one with a payload that is not JSON: the event-by-event loop converts it, or raises its error.
    (Each field read from a wire message costs about 0.2 us; this reads each once, and makes the ids of a
    request without any together. Profiled: 2.45 -> 2.05 us per event.)"""
    if any(message.metadata_json for message in messages):
        return None
    if not {message.content_type for message in messages} <= _PLAIN_CONTENT_TYPES:
        return None
    versions = [message.schema_version or 1 for message in messages]
    if max(versions, default=1) > MAX_SCHEMA_VERSION:
        return None
    if len(given_ids) == len(messages):
        event_ids = given_ids
    elif not given_ids:
        event_ids = new_event_ids(len(messages))
    else:
        return None
    try:
        payloads = [pydantic_core.from_json(message.data) for message in messages]
    except ValueError:
        return None
    return [
        EventData(message.event_type, payload, {}, event_id, version)
        for message, payload, event_id, version in zip(messages, payloads, event_ids, versions, strict=True)
    ]


def _event_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as error:
        raise InvalidArgumentError(f"event_id must be a UUID, got {text!r}") from error


def event_data_from_message(message: sluice_pb2.EventToWrite, *, event_id: uuid.UUID | None = None) -> EventData:
    """An EventData from a wire event: id parsed (unless given, already parsed), JSON payload and metadata decoded."""
    content_type = message.content_type or JSON_CONTENT_TYPE
    if content_type not in SUPPORTED_CONTENT_TYPES:
        raise InvalidArgumentError(
            f"content_type must be one of {', '.join(SUPPORTED_CONTENT_TYPES)}, got {content_type!r}"
        )
    data: Any = decode_json(message.data, "data") if content_type == JSON_CONTENT_TYPE else bytes(message.data)
    metadata = decode_json(message.metadata_json.encode(), "metadata_json") if message.metadata_json else {}
    if not isinstance(metadata, dict):
        raise InvalidArgumentError("metadata_json must be a JSON object")
    if event_id is None:
        event_id = _event_id(message.event_id) if message.event_id else uuid.uuid4()
    if message.schema_version > MAX_SCHEMA_VERSION:
        raise InvalidArgumentError(f"schema_version must be at most {MAX_SCHEMA_VERSION}, got {message.schema_version}")
    return EventData(
        event_type=message.event_type,
        data=data,
        metadata=metadata,
        event_id=event_id,
        schema_version=message.schema_version or 1,
    )


def decode_json(payload: bytes, field: str) -> Any:
    """Parse JSON text from the wire, as InvalidArgumentError when it is not JSON."""
    try:
        return pydantic_core.from_json(payload)
    except ValueError as error:
        raise InvalidArgumentError(f"{field} is not valid JSON: {error}") from error


def expected_offset_from_request(request: sluice_pb2.AppendRequest) -> int | ExpectedOffset:
    """The append's optimistic-concurrency expectation."""
    if request.WhichOneof("expected") == "expected_offset":
        return checked_offset(request.expected_offset, field="expected_offset")
    return _EXPECTED_STATES[request.expected_state]


def direction_from_message(direction: sluice_pb2.Direction.ValueType) -> Direction:
    return Direction.BACKWARDS if direction == sluice_pb2.DIRECTION_BACKWARDS else Direction.FORWARDS


def recorded_event_message(event: RecordedEvent) -> sluice_pb2.RecordedEvent:
    """The wire form of a stored event; the payload is sent as stored, without decoding it."""
    metadata = event.metadata
    return sluice_pb2.RecordedEvent(
        stream_name=event.stream_name,
        partition=event.partition,
        offset=event.offset,
        event_id=str(event.event_id),
        event_type=event.event_type,
        schema_version=event.schema_version,
        content_type=event.content_type,
        data=event.payload,
        metadata_json=encode_json_object(metadata),
        correlation_id=event.correlation_id or "",
        timestamp=timestamp_message(event.timestamp),
        global_position=str(event.global_position),
    )


def queue_message_message(message: QueueMessage) -> sluice_pb2.QueueMessage:
    """The wire form of a leased queue message, with its receipt."""
    data = message.data
    if isinstance(data, bytes):
        payload, content_type = data, BINARY_CONTENT_TYPE
    else:
        payload, content_type = pydantic_core.to_json(data), JSON_CONTENT_TYPE
    return sluice_pb2.QueueMessage(
        queue_name=message.queue_name,
        message_id=message.message_id,
        receipt=str(message.receipt),
        attempt=message.attempt,
        event_type=message.event_type,
        content_type=content_type,
        data=payload,
        metadata_json=encode_json_object(message.metadata),
        correlation_id=message.correlation_id or "",
        enqueued_at=timestamp_message(message.enqueued_at),
        visible_at=timestamp_message(message.visible_at),
    )


def encode_json_object(value: Mapping[str, Any]) -> str:
    return pydantic_core.to_json(value).decode() if value else ""


def timestamp_message(moment: datetime) -> timestamp_pb2.Timestamp:
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))
    return timestamp


def datetime_from_timestamp(timestamp: timestamp_pb2.Timestamp, *, field: str) -> datetime:
    return timestamp_value(timestamp, field=field)


def timedelta_from_duration(duration: duration_pb2.Duration, *, field: str) -> timedelta:
    """A timedelta from a Duration, from zero to ``MAX_DURATION`` (InvalidArgumentError otherwise)."""
    return duration_value(duration, field=field)
