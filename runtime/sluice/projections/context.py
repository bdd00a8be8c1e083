"""What a projection's handlers and hooks receive besides the events: where to write, and in which mode."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sluice.errors import InvalidArgumentError

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    DatabaseConnection = PoolConnectionProxy[asyncpg.Record]


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionContext:
    """Handed to every handler call and hook.

    ``connection`` is set when the checkpoints live in the store's PostgreSQL (same-database mode): it is
    the connection of the transaction that also advances the checkpoint, so writes made through it commit
    together with the checkpoint, or not at all (effectively once). It is None otherwise (the in-memory
    checkpoint store): delivery is then at least once, and handlers use ``event.event_id`` to stay
    idempotent.

    ``version`` is the read-model version being written: it changes only with a blue/green rebuild, which
    builds version N+1 beside version N and makes it active once it has caught up.
    """

    projection_name: str
    version: int
    connection: DatabaseConnection | None = None
    rebuilding: bool = False
    """True while this version is being built by a rebuild (it is not the active version yet, or it is
    being replayed in place)."""

    def require_connection(self) -> DatabaseConnection:
        """The transaction's connection; InvalidArgumentError outside same-database mode."""
        if self.connection is None:
            raise InvalidArgumentError(
                f"projection {self.projection_name!r} has no database connection: its checkpoints are not "
                "stored in PostgreSQL (same-database mode needs a postgresql:// store)"
            )
        return self.connection
