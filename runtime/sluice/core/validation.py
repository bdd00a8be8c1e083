"""Checks of caller input before it reaches a backend, raising Sluice's typed errors: pydantic failures
of Sluice's own models, and numbers the database cannot hold (offsets and ids up to 2^63 - 1, durations
up to 100 years, dedupe keys up to 500 characters). Checked here, a bad value changes nothing on either
backend instead of failing half-way in the database (or, for a lease, after it was stored)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from sluice.core.errors import InvalidArgumentError, InvalidNameError


def invalid_argument(error: ValidationError, model: str) -> InvalidArgumentError:
    """An InvalidArgumentError (InvalidNameError for a bad name) describing every failed field."""
    problems = []
    name_failed = False
    for detail in error.errors():
        field = ".".join(str(part) for part in detail["loc"]) or model
        name_failed = name_failed or field in {"name", "schema_name"}
        message = str(detail["msg"]).removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    text = f"invalid {model}: " + "; ".join(problems)
    return InvalidNameError(text) if name_failed else InvalidArgumentError(text)


class SluiceModel(BaseModel):
    """Base of Sluice's configuration models: invalid input raises InvalidArgumentError."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise invalid_argument(error, type(self).__name__) from error


MAX_INT64 = 2**63 - 1
"""The largest offset, message id or dead-letter id the database can hold (PostgreSQL bigint)."""

MAX_INT32 = 2**31 - 1
"""The largest attempt number the database can hold (PostgreSQL integer)."""

MAX_DURATION = timedelta(days=36_500)
"""The longest delay, timeout or age Sluice accepts (100 years): a time computed from it always fits
in a timestamp both PostgreSQL and Python can read (Python's datetime ends at year 9999)."""

MAX_DEDUPE_KEY_LENGTH = 500
"""The longest queue dedupe key, in characters."""


def check_integer(value: object, name: str, *, minimum: int = 0, maximum: int = MAX_INT64) -> int:
    """``value`` when it is an int (not a bool) from ``minimum`` to ``maximum``, else InvalidArgumentError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    if value > maximum:
        raise InvalidArgumentError(f"{name} must be at most {maximum}, got {value}")
    return value


def check_offset(value: int | None, name: str) -> None:
    """An offset (or offset-like position) from 0 to 2^63 - 1; None passes."""
    if value is not None:
        check_integer(value, name)


def check_duration(value: object, name: str, *, allow_zero: bool = False) -> timedelta:
    """``value`` when it is a timedelta above zero (or zero, if allowed) and at most ``MAX_DURATION``."""
    if not isinstance(value, timedelta) or (value <= timedelta(0) and not allow_zero):
        raise InvalidArgumentError(f"{name} must be a positive timedelta, got {value!r}")
    if value < timedelta(0):
        raise InvalidArgumentError(f"{name} must not be negative, got {value}")
    if value > MAX_DURATION:
        raise InvalidArgumentError(f"{name} must be at most {MAX_DURATION.days} days, got {value}")
    return value


def duration_from_seconds(seconds: float, name: str, *, allow_zero: bool = False) -> timedelta:
    """A timedelta of ``seconds`` (a CLI or wire number), with the limits of ``check_duration``;
    infinities, NaN and numbers too large for a timedelta raise InvalidArgumentError, not OverflowError."""
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION.total_seconds():
        raise InvalidArgumentError(f"{name} must be at most {MAX_DURATION.total_seconds():.0f} seconds, got {seconds}")
    return check_duration(timedelta(seconds=seconds), name, allow_zero=allow_zero)


def check_dedupe_key(value: str | None) -> None:
    """A dedupe key is None or 1 to 500 characters."""
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_DEDUPE_KEY_LENGTH):
        raise InvalidArgumentError(f"dedupe_key must be 1 to {MAX_DEDUPE_KEY_LENGTH} characters")


def check_receipt(message_id: int, attempt: int) -> None:
    """A receipt's message id (1 to 2^63 - 1) and attempt (1 to 2^31 - 1) are numbers the database can hold."""
    check_integer(message_id, "a receipt's message id", minimum=1)
    check_integer(attempt, "a receipt's attempt", minimum=1, maximum=MAX_INT32)


def check_partition_key(value: object) -> None:
    """A partition key is None or text UTF-8 can encode (its CRC-32 is taken of its UTF-8 bytes): a string
    holding a lone surrogate (such as a command-line argument that was not UTF-8) raises InvalidArgumentError."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidArgumentError(f"partition_key must be text, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise InvalidArgumentError(f"partition_key is not valid Unicode text: {error}") from error


def lease_too_long(queue_name: str, receipt: object) -> InvalidArgumentError:
    """The error of an ``extend`` whose lease would end more than ``MAX_DURATION`` from now (the lease is
    left as it was): stacked extensions would otherwise end it past year 9999, and the message with it."""
    return InvalidArgumentError(
        f"extending receipt {receipt} of queue {queue_name!r} would end its lease more than "
        f"{MAX_DURATION.days} days from now; the lease was not changed"
    )


UTF8_MAX_BYTES_PER_CHARACTER = 4
"""A text of n characters is at most 4n bytes in UTF-8, so only a longer one than a quarter of a limit in
bytes needs encoding to be measured."""


def check_prepared_events(schema_versions: list[int], metadata: list[str], *, limit: int) -> None:
    """Schema versions from 1 to 2^31 - 1 (a stored 0 or -1 cannot travel in the wire's unsigned field:
    every gRPC read of its partition failed) and metadata of at most ``limit`` bytes (the payload limit:
    metadata was unbounded), checked by each backend before it stores anything.

    Each check first runs over the whole column in C (the types, the least and greatest version, the longest
    text), and goes value by value only when that finds something to look at."""
    if schema_versions and (
        set(map(type, schema_versions)) != {int} or min(schema_versions) < 1 or max(schema_versions) > MAX_INT32
    ):
        for version in schema_versions:
            check_integer(version, "schema_version", minimum=1, maximum=MAX_INT32)
    if metadata and max(map(len, metadata)) > limit // UTF8_MAX_BYTES_PER_CHARACTER:
        for text in metadata:
            if len(text) > limit // UTF8_MAX_BYTES_PER_CHARACTER and (size := len(text.encode())) > limit:
                raise InvalidArgumentError(f"metadata is {size} bytes, over the limit of {limit} bytes")
