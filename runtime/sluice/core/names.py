"""Validation of every name that reaches storage: streams, queues, groups and database schemas.

Names are checked once, here, before they are used anywhere; SQL never has a user string formatted
into it (values are bound parameters, and the only identifier, the schema, is validated and quoted).
"""

from __future__ import annotations

import re

from sluice.core.errors import InvalidNameError

STREAM_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
"""Stream and queue names: 1 to 200 characters, letters, digits, '.', '_', ':' and '-',
starting with a letter or digit. Examples: ``orders``, ``email-queue``, ``order:1f3a``."""

SCHEMA_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,47}")
"""PostgreSQL schema names Sluice will create: lower-case identifiers of at most 48 characters."""


def validate_stream_name(name: object) -> str:
    """Return ``name`` if it is a valid stream or queue name, else raise InvalidNameError."""
    if not isinstance(name, str) or STREAM_NAME_PATTERN.fullmatch(name) is None:
        raise InvalidNameError(
            f"invalid stream name {name!r}: use 1-200 characters from letters, digits, '.', '_', ':' "
            "and '-', starting with a letter or digit"
        )
    return name


def validate_schema_name(name: object) -> str:
    """Return ``name`` if it is a valid Sluice database schema name, else raise InvalidNameError."""
    if not isinstance(name, str) or SCHEMA_NAME_PATTERN.fullmatch(name) is None:
        raise InvalidNameError(
            f"invalid schema name {name!r}: use a lower-case identifier of at most 48 characters "
            "(letters, digits and '_', not starting with a digit)"
        )
    return name


def quote_identifier(name: str) -> str:
    """Quote an already validated identifier for SQL."""
    validate_schema_name(name)
    return '"' + name + '"'


GROUP_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
"""Consumer group and consumer ids: the same rules as stream names."""


def validate_group_id(value: object, what: str = "group id") -> str:
    """Return ``value`` if it is a valid group or consumer id, else raise InvalidNameError."""
    if not isinstance(value, str) or GROUP_NAME_PATTERN.fullmatch(value) is None:
        raise InvalidNameError(
            f"invalid {what} {value!r}: use 1-200 characters from letters, digits, '.', '_', ':' "
            "and '-', starting with a letter or digit"
        )
    return value
