"""What a principal may do to a stream: the four permissions and what each implies.

``admin`` implies the other three; ``read``, ``write`` and ``consume`` are independent (a producer
that may write need not read, a worker that consumes through a group need not read the raw stream).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Permission(enum.StrEnum):
    """One permission on the streams a pattern names."""

    READ = "read"
    """Describe streams, read them, subscribe, read the global log, list dead letters and groups' lag."""
    WRITE = "write"
    """Append events and enqueue messages."""
    CONSUME = "consume"
    """Consume as a consumer-group member and commit; dequeue, acknowledge, nack and extend."""
    ADMIN = "admin"
    """Create, reconfigure and delete streams, redrive and purge dead letters, reset and delete groups,
    and every operation not classified otherwise (new operations default to admin). Implies the others."""


ALL_PERMISSIONS = frozenset(Permission)


def expand(permissions: Iterable[Permission]) -> frozenset[Permission]:
    """The permissions held, with what ``admin`` implies added."""
    held = frozenset(permissions)
    return ALL_PERMISSIONS if Permission.ADMIN in held else held
