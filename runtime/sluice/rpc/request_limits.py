"""The ranges the gRPC door accepts for numbers the wire allows but Sluice cannot store or use.

Protobuf carries offsets as uint64 and durations up to 10,000 years; PostgreSQL stores offsets and ids
as bigint (below 2^63) and timestamps up to the year 294276, and Python's datetime stops at 9999. Each
check here refuses such a value with InvalidArgumentError before anything is read, leased or stored,
naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from sluice.core.errors import InvalidArgumentError
from sluice.core.messages import Receipt

MAX_OFFSET = 2**63 - 1
"""Offsets, limits, message ids and epochs are bigint in the database."""
MAX_ATTEMPT = 2**31 - 1
"""A receipt's attempt is an integer in the database."""
MAX_RECEIPT_LENGTH = 40
"""Two decimal numbers below 2^63 and a dot fit in 40 characters."""
MAX_DURATION = timedelta(days=36_500)
"""The longest delay, lease, visibility timeout, session timeout or checkpoint interval over gRPC: 100
years, as the library allows, so a time computed from it stays below the year 9999."""
MAX_DEDUPE_KEY_LENGTH = 500
"""As the library's ``enqueue``: a dedupe key is 1 to 500 characters."""


def checked_offset(value: int, *, field: str) -> int:
    """An offset-like number (offset, limit, id, epoch) the database can store."""
    if value > MAX_OFFSET:
        raise InvalidArgumentError(f"{field} must be at most {MAX_OFFSET} (2^63 - 1), got {value}")
    return value


def duration_value(duration: duration_pb2.Duration, *, field: str) -> timedelta:
    """A Duration as a timedelta from zero to MAX_DURATION. A Duration the protobuf spec calls invalid
    (nanos outside +-999,999,999, or of another sign than seconds) is refused, not read as some other
    length."""
    seconds, nanos = duration.seconds, duration.nanos
    if not -999_999_999 <= nanos <= 999_999_999 or (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        raise InvalidArgumentError(
            f"{field} is not a valid duration: nanos must be within +-999,999,999 and have the sign of seconds "
            f"(got seconds={seconds}, nanos={nanos})"
        )
    try:
        value = duration.ToTimedelta()
    except (ValueError, OverflowError) as error:
        raise InvalidArgumentError(f"{field} is not a valid duration: {error}") from error
    if value < timedelta(0):
        raise InvalidArgumentError(f"{field} must not be negative, got {value}")
    if value > MAX_DURATION:
        raise InvalidArgumentError(f"{field} must be at most {MAX_DURATION.days} days (100 years), got {value}")
    return value


def timestamp_value(timestamp: timestamp_pb2.Timestamp, *, field: str) -> datetime:
    """A Timestamp as an aware datetime (years 1 to 9999)."""
    try:
        return timestamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        raise InvalidArgumentError(f"{field} is not a valid timestamp (years 1 to 9999): {error}") from error


def checked_dedupe_keys(keys: list[str]) -> list[str | None] | None:
    """The dedupe keys of an Enqueue (empty strings mean no key), each at most 500 characters."""
    for index, key in enumerate(keys):
        if len(key) > MAX_DEDUPE_KEY_LENGTH:
            raise InvalidArgumentError(
                f"dedupe_keys[{index}] must be 1 to {MAX_DEDUPE_KEY_LENGTH} characters, got {len(key)}"
            )
    return [key or None for key in keys] or None


def receipt_value(text: str) -> Receipt:
    """A receipt sent back by a client, with a message id and attempt the database can hold."""
    if len(text) > MAX_RECEIPT_LENGTH:
        raise InvalidArgumentError(f"receipt {text[:60]!r}... is out of range: no message has it")
    receipt = Receipt.parse(text)
    if receipt.message_id > MAX_OFFSET or receipt.attempt > MAX_ATTEMPT:
        raise InvalidArgumentError(f"receipt {text[:60]!r} is out of range: no message has it")
    return receipt
