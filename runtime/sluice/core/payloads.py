"""Encoding of event and message payloads to bytes for storage, and back.

JSON is written with pydantic-core (fast, and handles datetimes, UUIDs and decimals); ``bytes``
payloads are stored as they are and marked with a binary content type.
"""

from __future__ import annotations

from typing import Any, Final

import pydantic_core
from pydantic_core import core_schema

from sluice.core.compression import PLAIN_CONTENT_TYPES, plain_payload
from sluice.core.errors import InvalidArgumentError, PayloadTooLargeError
from sluice.core.events import BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE

_JSON_CONTAINER_TYPES = (dict, list)
LARGEST_PAYLOAD_LIMIT = 256 * 1024 * 1024
"""The largest ``max_payload_bytes`` a store accepts: the decompression cap when none is given."""

_JSON_WITH_CONSTANTS = pydantic_core.SchemaSerializer(
    core_schema.any_schema(), core_schema.CoreConfig(ser_json_inf_nan="constants")
)
json_with_constants: Final = _JSON_WITH_CONSTANTS.to_json
"""``pydantic_core.to_json(value, inf_nan_mode="constants")``: the same bytes and errors for every value
(tests/unit/test_json_with_constants.py), from a serializer configured once. The keyword argument alone cost
0.18 of the 0.47 us that call took per small dict, paid once per event of every append and enqueue. Non-finite
floats come out as the bare constants NaN and Infinity, which ``refuse_non_finite_numbers`` looks for."""


def encode_payload(data: Any, *, event_type: str, limit: int) -> tuple[bytes, str]:
    """Return (payload bytes, content type), raising PayloadTooLargeError over ``limit`` bytes."""
    if type(data) not in _JSON_CONTAINER_TYPES and isinstance(data, bytes | bytearray | memoryview):
        encoded, content_type = bytes(data), BINARY_CONTENT_TYPE
    else:
        try:
            encoded = json_with_constants(data)
        except pydantic_core.PydanticSerializationError as error:
            raise InvalidArgumentError(
                f"data of event type {event_type!r} is not JSON-serializable: {error}"
            ) from error
        refuse_non_finite_numbers(encoded, "data", event_type=event_type)
        content_type = JSON_CONTENT_TYPE
    if len(encoded) > limit:
        raise PayloadTooLargeError(size=len(encoded), limit=limit, event_type=event_type)
    return encoded, content_type


def decode_payload(payload: bytes, content_type: str, *, limit: int = LARGEST_PAYLOAD_LIMIT) -> Any:
    """Inverse of encode_payload. A compressed payload (see sluice.core.compression) is decompressed
    first, to at most ``limit`` bytes (pass the store's ``max_payload_bytes``)."""
    if content_type == JSON_CONTENT_TYPE:
        return pydantic_core.from_json(payload)
    if content_type not in PLAIN_CONTENT_TYPES:
        payload, content_type = plain_payload(payload, content_type, limit=limit)
        if content_type == JSON_CONTENT_TYPE:
            return pydantic_core.from_json(payload)
    return payload


def encode_metadata(metadata: Any) -> str:
    """Metadata is a JSON object stored as jsonb; return its JSON text."""
    if not isinstance(metadata, dict):
        metadata = dict(metadata)
    try:
        encoded = json_with_constants(metadata)
    except pydantic_core.PydanticSerializationError as error:
        raise InvalidArgumentError(f"metadata is not JSON-serializable: {error}") from error
    refuse_non_finite_numbers(encoded, "metadata")
    text = encoded.decode()
    if "\\u0000" in text and _contains_nul(metadata):
        # PostgreSQL's jsonb cannot hold the NUL character; refused on every backend, so both behave alike.
        raise InvalidArgumentError("metadata must not contain the NUL character (\\u0000)")
    return text


def refuse_non_finite_numbers(encoded: bytes, what: str, *, event_type: str | None = None) -> None:
    """Raise InvalidArgumentError when JSON written with ``inf_nan_mode="constants"`` holds a bare NaN,
    Infinity or -Infinity.

    pydantic-core's default writes them as ``null``, which would lose the value without a word. The substring
    test is the fast path; strict parsing then tells a bare constant from the same letters inside a string.
    ``what`` names the value in the error, followed by its ``event_type`` when given: the message is only
    made for an error (formatting it for every event cost a third of a microsecond each)."""
    if b"NaN" not in encoded and b"Infinity" not in encoded:
        return
    try:
        pydantic_core.from_json(encoded, allow_inf_nan=False)
    except ValueError:
        subject = what if event_type is None else f"{what} of event type {event_type!r}"
        raise InvalidArgumentError(
            f"{subject} holds NaN or Infinity, which JSON cannot represent (refused rather than stored as null)"
        ) from None


def _contains_nul(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys included) holds the NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False
