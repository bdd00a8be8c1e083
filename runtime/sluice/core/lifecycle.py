"""Stream lifecycle changes: archive (read-only), unarchive, soft delete (hidden, restorable) and restore.

The public methods live on EventStore (``archive_stream``, ``unarchive_stream``, ``delete_stream(soft=
True)``, ``restore_stream``, ``purge_deleted_streams``); this module holds what they hand to a backend
and the validation they share. Every change records who (the optional ``actor``) and when.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import timedelta

from sluice.core.errors import InvalidArgumentError

MAX_ACTOR_LENGTH = 200
AUTO_CREATE_ACTOR = "auto-create"
"""``created_by`` of a stream (queue) created by its first append (enqueue)."""


class LifecycleAction(enum.StrEnum):
    """A change of a stream's lifecycle state."""

    ARCHIVE = "archive"
    """Read-only: appends and enqueues are refused; reads and consumer groups still work."""
    UNARCHIVE = "unarchive"
    SOFT_DELETE = "soft_delete"
    """Hidden from get and list, writes refused; restorable within the grace period."""
    RESTORE = "restore"


@dataclasses.dataclass(frozen=True, slots=True)
class LifecycleChange:
    """What a backend applies: the action, who asked, and (for RESTORE) how long a deleted stream
    stays restorable."""

    action: LifecycleAction
    actor: str | None
    grace_period: timedelta


def validate_actor(actor: object) -> str | None:
    """Return ``actor`` if it is None or 1 to 200 characters of text, else raise InvalidArgumentError."""
    if actor is None:
        return None
    if not isinstance(actor, str) or not 0 < len(actor) <= MAX_ACTOR_LENGTH or not actor.isprintable():
        raise InvalidArgumentError(f"actor must be 1 to {MAX_ACTOR_LENGTH} printable characters, got {actor!r}")
    return actor
