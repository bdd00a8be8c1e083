"""The checkpoint store contract: where a projection's positions, versions and rebuild live.

Two implementations: the PostgreSQL adapter's (``sluice.storage.postgres.projection_checkpoints``, handed
out by ``store.backend.database.projection_checkpoints()``; same-database mode: handlers write through the
connection of the transaction that advances the checkpoint) and ``MemoryCheckpointStore``
(``sluice.services.projections``, at least once, for any store).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence

from sluice.core.errors import SluiceError
from sluice.core.events import GlobalPosition
from sluice.store.sql_connection import SqlConnection
from sluice.store.values.projections import ProjectionDeadLetter, ProjectionState

TransactionWork = Callable[[SqlConnection | None], Awaitable[None]]
"""Work done inside a checkpoint store's transaction: given its connection (None in memory)."""


async def nothing(connection: SqlConnection | None) -> None:
    """TransactionWork that does nothing."""


class CheckpointStore(abc.ABC):
    """Positions per projection and read-model version, the active version and the rebuild."""

    same_database: bool = False
    """True when work gets the connection of the transaction that commits the checkpoint."""

    def translate_error(self, error: BaseException) -> SluiceError | None:
        """The Sluice error that a driver error raised inside this store's transaction (by a handler's
        statement) stands for, or None when it is not one the adapter translates (a handler's own failure).
        The runner tells a lost connection from a handler's failure by it. None here: no driver."""
        return None

    @abc.abstractmethod
    async def register(
        self, name: str, sources: Sequence[str], *, reset_generation: int, start_after: GlobalPosition | None
    ) -> ProjectionState:
        """Create the projection (at ``start_after``, with ``reset_generation``) or update its sources."""

    @abc.abstractmethod
    async def load(self, name: str) -> ProjectionState | None:
        """The projection, or None if it was never registered."""

    @abc.abstractmethod
    async def advance(
        self,
        name: str,
        version: int,
        *,
        expected: GlobalPosition | None,
        position: GlobalPosition,
        count: int,
        work: TransactionWork,
    ) -> None:
        """Run ``work`` (apply a batch) and move ``version``'s checkpoint from ``expected`` to ``position``.
        Raises ProjectionConflictError, with nothing applied in same-database mode, when the checkpoint is
        no longer at ``expected``."""

    @abc.abstractmethod
    async def start_rebuild(
        self, name: str, *, generation: int, version: int, blue_green: bool, total: int, work: TransactionWork
    ) -> ProjectionState:
        """Record a rebuild of ``version`` (the active one, in place; or a new one, blue/green), put its
        checkpoint back at the start and run ``work`` (the reset or prepare hook) in the same transaction."""

    @abc.abstractmethod
    async def finish_rebuild(self, name: str, version: int, *, work: TransactionWork) -> ProjectionState:
        """Make the rebuilt ``version`` the active one and drop the other versions' checkpoints, running
        ``work`` (the activate hook) in the same transaction."""

    @abc.abstractmethod
    async def run_in_transaction(self, work: TransactionWork) -> None:
        """Run ``work`` in a transaction of its own (retiring an old version's storage)."""

    @abc.abstractmethod
    async def request_rebuild(self, name: str) -> None:
        """Ask the projection's runner to rebuild it (ProjectionNotFoundError if it never ran)."""

    @abc.abstractmethod
    async def rebuild_requested(self, name: str) -> bool:
        """Whether a rebuild was requested and not started yet."""

    @abc.abstractmethod
    async def record_generation(self, name: str, generation: int) -> None:
        """Remember ``generation`` as acted on, without a rebuild."""

    @abc.abstractmethod
    async def record_dead_letters(
        self, connection: SqlConnection | None, name: str, letters: Sequence[ProjectionDeadLetter]
    ) -> None:
        """Record events a version could not apply, inside ``advance``'s work (``connection`` is its
        transaction's; None in memory), so they commit with the checkpoint that passes them."""

    @abc.abstractmethod
    async def dead_letters(self, name: str, *, limit: int) -> list[ProjectionDeadLetter]:
        """The active version's dead letters, oldest event first (ProjectionNotFoundError if it never ran)."""
