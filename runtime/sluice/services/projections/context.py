"""What a projection's handlers and hooks receive besides the events: where to write, and in which mode."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sluice.core.errors import InvalidArgumentError
from sluice.core.events import RecordedEvent
from sluice.store.values.projections import ProjectionDeadLetter

if TYPE_CHECKING:
    from sluice.store.sql_connection import SqlConnection


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionContext:
    """Handed to every handler call and hook.

    ``connection`` is set when the checkpoints live in the store's PostgreSQL (same-database mode): it is
    the connection of the transaction that also advances the checkpoint, so writes made through it commit
    together with the checkpoint, or not at all (effectively once). It is the PostgreSQL driver's
    (asyncpg's) pooled connection, typed by the part Sluice uses (``sluice.store.sql_connection``). It is
    None otherwise (the in-memory checkpoint store): delivery is then at least once, and handlers use
    ``event.event_id`` to stay idempotent.

    ``version`` is the read-model version being written: it changes only with a blue/green rebuild, which
    builds version N+1 beside version N and makes it active once it has caught up.
    """

    projection_name: str
    version: int
    connection: SqlConnection | None = None
    rebuilding: bool = False
    """True while this version is being built by a rebuild (it is not the active version yet, or it is
    being replayed in place)."""
    dead_letters: list[ProjectionDeadLetter] = dataclasses.field(default_factory=list)
    """The batch's events that this version could not apply (``dead_letter``); the runner records them
    with the batch's checkpoint."""

    def dead_letter(self, event: RecordedEvent, reason: str) -> None:
        """Record that ``event`` cannot be applied to this version, and why: the projection goes on past it
        (in same-database mode the record commits with the batch), and status and metrics count it."""
        self.dead_letters.append(
            ProjectionDeadLetter(
                version=self.version,
                position=event.global_position,
                stream_name=event.stream_name,
                partition=event.partition,
                offset=event.offset,
                event_id=event.event_id,
                event_type=event.event_type,
                reason=reason,
            )
        )

    def require_connection(self) -> SqlConnection:
        """The transaction's connection; InvalidArgumentError outside same-database mode."""
        if self.connection is None:
            raise InvalidArgumentError(
                f"projection {self.projection_name!r} has no database connection: its checkpoints are not "
                "stored in PostgreSQL (same-database mode needs a postgresql:// store)"
            )
        return self.connection
