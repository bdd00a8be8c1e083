"""Stream-name patterns of retention policies, and which policy applies to a stream.

A pattern is one of:
- a stream name (``orders``): that stream only;
- a literal prefix followed by ``*`` (``orders-*``): every stream whose name starts with the prefix;
- ``*`` alone: every stream (the default policy).

``*`` may only come last: precedence is then total and easy to predict. For a stream, the policy
whose pattern matches it most specifically wins: an exact name beats every prefix, a longer prefix
beats a shorter one (``orders-eu-*`` beats ``orders-*``), and ``*`` comes last. Policies are never
merged: the winner's limits apply alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, TypeVar

from sluice.core.errors import InvalidArgumentError

WILDCARD = "*"
_PATTERN = re.compile(r"\*|[A-Za-z0-9][A-Za-z0-9._:-]{0,199}\*?")


def validate_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is a valid policy pattern, else raise InvalidArgumentError."""
    if not isinstance(pattern, str) or _PATTERN.fullmatch(pattern) is None or len(pattern) > 201:
        raise InvalidArgumentError(
            f"invalid retention pattern {pattern!r}: use a stream name (orders), a prefix followed by '*' "
            "(orders-*), or '*' for every stream"
        )
    return pattern


def matches(pattern: str, stream_name: str) -> bool:
    """Whether ``pattern`` covers ``stream_name``."""
    if pattern.endswith(WILDCARD):
        return stream_name.startswith(pattern[:-1])
    return pattern == stream_name


def specificity(pattern: str) -> tuple[int, int]:
    """A sort key: larger is more specific. Exact names rank above every prefix; among prefixes,
    longer ranks higher; ``*`` (the empty prefix) lowest."""
    if pattern.endswith(WILDCARD):
        return (0, len(pattern) - 1)
    return (1, len(pattern))


class HasPattern(Protocol):
    @property
    def pattern(self) -> str: ...


Policy = TypeVar("Policy", bound=HasPattern)


def most_specific(policies: Iterable[Policy], stream_name: str) -> Policy | None:
    """The policy that applies to ``stream_name``, or None when no pattern matches it."""
    matching = [policy for policy in policies if matches(policy.pattern, stream_name)]
    if not matching:
        return None
    return max(matching, key=lambda policy: specificity(policy.pattern))
