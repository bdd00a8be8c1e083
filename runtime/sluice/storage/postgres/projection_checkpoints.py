"""Checkpoints in the store's PostgreSQL (tables ``projections`` and ``projection_checkpoints``): the
adapter's ``CheckpointStore`` (``sluice.store.contracts.projection_checkpoints``), handed out by
``store.backend.database.projection_checkpoints()``; its SQL is in ``sql/projections.sql``.

Same-database mode: a batch's work (the handlers' writes through the connection they are given) and the
checkpoint's compare-and-set update run in one transaction. The update comes first, so a second runner of
the same projection waits on the checkpoint row and then finds it moved: it rolls back before its
handlers run. A crash anywhere before COMMIT leaves neither the writes nor the new position, so each
event is applied exactly once to the read model (effectively once).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from sluice.core.errors import ProjectionConflictError, ProjectionDatabaseError, ProjectionNotFoundError, SluiceError
from sluice.core.events import GlobalPosition
from sluice.storage.postgres.driver_errors import is_untranslated_database_error, translate
from sluice.storage.postgres.queries import named_queries
from sluice.store.contracts.projection_checkpoints import CheckpointStore, TransactionWork
from sluice.store.values.projections import ProjectionDeadLetter, ProjectionState, RebuildProgress, VersionCheckpoint

if TYPE_CHECKING:
    from sluice.store.port import SqlDatabase
    from sluice.store.sql_connection import SqlConnection


def projection_query(name: str) -> str:
    """One named query of ``sql/projections.sql`` (checkpoints and the sources' reads); KeyError if unknown."""
    return named_queries("projections.sql")[name]


def position_parameters(position: GlobalPosition | None) -> tuple[int | None, int | None]:
    return (None, None) if position is None else (position.transaction, position.sequence)


class PostgresCheckpointStore(CheckpointStore):
    """Checkpoints in the PostgreSQL schema of a store."""

    same_database = True

    def __init__(self, database: SqlDatabase) -> None:
        """``database``: the store's (``store.backend.database``, or a ``PostgresEventStore`` itself)."""
        self._database = database

    def translate_error(self, error: BaseException) -> SluiceError | None:
        return translate(error)

    @contextlib.asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[SqlConnection]:
        # The store's pool translates driver errors (a lost connection: ConnectionLostError); what it leaves
        # as it is (a handler's statement or a trigger refused for good) is this projection's database error.
        try:
            async with self._database.acquire() as connection, connection.transaction():
                yield connection
        except Exception as error:
            if not is_untranslated_database_error(error):
                raise
            raise ProjectionDatabaseError(f"the {operation} transaction failed, nothing applied: {error}") from error

    async def register(
        self, name: str, sources: Sequence[str], *, reset_generation: int, start_after: GlobalPosition | None
    ) -> ProjectionState:
        async with self._transaction("projection register") as connection:
            await connection.execute(
                projection_query("projection_register"),
                name,
                list(sources),
                reset_generation,
                *position_parameters(start_after),
            )
            return await self._load(connection, name)

    async def load(self, name: str) -> ProjectionState | None:
        # One snapshot for the projection's row and its checkpoints: a rebuild finishing in between
        # (active version switched, old checkpoint deleted) must not be seen half-way.
        async with (
            self._database.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            try:
                return await self._load(connection, name)
            except ProjectionNotFoundError:
                return None

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
        async with self._transaction("projection batch") as connection:
            advanced = await connection.fetchval(
                projection_query("projection_advance"),
                name,
                version,
                *position_parameters(expected),
                position.transaction,
                position.sequence,
                count,
            )
            if not advanced:
                raise ProjectionConflictError(
                    f"the checkpoint of projection {name!r} (version {version}) moved: another runner applied "
                    "this batch or reset the projection"
                )
            await work(connection)

    async def start_rebuild(
        self, name: str, *, generation: int, version: int, blue_green: bool, total: int, work: TransactionWork
    ) -> ProjectionState:
        async with self._transaction("projection rebuild") as connection:
            await self._lock(connection, name)
            await connection.execute(
                projection_query("projection_start_rebuild"), name, generation, version, blue_green, total
            )
            await connection.execute(projection_query("projection_reset_checkpoint"), name, version)
            await connection.execute(projection_query("projection_clear_dead_letters"), name, version)
            await work(connection)
            return await self._load(connection, name)

    async def finish_rebuild(self, name: str, version: int, *, work: TransactionWork) -> ProjectionState:
        async with self._transaction("projection rebuild") as connection:
            await self._lock(connection, name)
            finished = await connection.execute(projection_query("projection_finish_rebuild"), name, version)
            if finished != "UPDATE 1":
                raise ProjectionConflictError(f"projection {name!r} is not rebuilding version {version}")
            await connection.execute(projection_query("projection_drop_other_checkpoints"), name, version)
            await connection.execute(projection_query("projection_drop_other_dead_letters"), name, version)
            await work(connection)
            return await self._load(connection, name)

    async def run_in_transaction(self, work: TransactionWork) -> None:
        async with self._transaction("projection hook") as connection:
            await work(connection)

    async def request_rebuild(self, name: str) -> None:
        async with self._database.acquire() as connection:
            if await connection.fetchval(projection_query("projection_request_rebuild"), name) is None:
                raise ProjectionNotFoundError(name)

    async def rebuild_requested(self, name: str) -> bool:
        async with self._database.acquire() as connection:
            return bool(await connection.fetchval(projection_query("projection_rebuild_requested"), name))

    async def record_generation(self, name: str, generation: int) -> None:
        async with self._database.acquire() as connection:
            await connection.execute(projection_query("projection_record_generation"), name, generation)

    async def record_dead_letters(
        self, connection: SqlConnection | None, name: str, letters: Sequence[ProjectionDeadLetter]
    ) -> None:
        if not letters:
            return
        if connection is None:
            raise ProjectionDatabaseError("dead letters are recorded inside the batch's transaction")
        await connection.execute(
            projection_query("projection_record_dead_letters"),
            name,
            [letter.version for letter in letters],
            [letter.position.transaction for letter in letters],
            [letter.position.sequence for letter in letters],
            [letter.stream_name for letter in letters],
            [letter.partition for letter in letters],
            [letter.offset for letter in letters],
            [letter.event_id for letter in letters],
            [letter.event_type for letter in letters],
            [letter.reason for letter in letters],
        )

    async def dead_letters(self, name: str, *, limit: int) -> list[ProjectionDeadLetter]:
        async with self._database.acquire() as connection:
            if await connection.fetchval(projection_query("projection_rebuild_requested"), name) is None:
                raise ProjectionNotFoundError(name)
            rows = await connection.fetch(projection_query("projection_dead_letters"), name, limit)
        return [
            ProjectionDeadLetter(
                version=row["version"],
                position=GlobalPosition(row["position_transaction"], row["position_sequence"]),
                stream_name=row["stream_name"],
                partition=row["partition"],
                offset=row["event_offset"],
                event_id=row["event_id"],
                event_type=row["event_type"],
                reason=row["reason"],
                dead_lettered_at=row["dead_lettered_at"],
            )
            for row in rows
        ]

    @staticmethod
    async def _lock(connection: SqlConnection, name: str) -> None:
        if await connection.fetchrow(projection_query("projection_lock"), name) is None:
            raise ProjectionNotFoundError(name)

    @staticmethod
    async def _load(connection: SqlConnection, name: str) -> ProjectionState:
        row = await connection.fetchrow(projection_query("projection_state"), name)
        if row is None:
            raise ProjectionNotFoundError(name)
        checkpoint_rows = await connection.fetch(projection_query("projection_checkpoints"), name)
        checkpoints = {
            record["version"]: VersionCheckpoint(
                version=record["version"],
                position=None
                if record["position_transaction"] is None
                else GlobalPosition(record["position_transaction"], record["position_sequence"]),
                events_applied=record["events_applied"],
                events_dead_lettered=record["events_dead_lettered"],
            )
            for record in checkpoint_rows
        }
        rebuild = None
        if row["rebuild_version"] is not None:
            rebuild = RebuildProgress(
                version=row["rebuild_version"],
                blue_green=row["rebuild_blue_green"],
                done=row["rebuild_done"],
                total=row["rebuild_total"],
                started_at=row["rebuild_started_at"],
                finished_at=row["rebuild_finished_at"],
            )
        return ProjectionState(
            name=row["name"],
            sources=tuple(row["sources"]),
            active_version=row["active_version"],
            reset_generation=row["reset_generation"],
            checkpoints=checkpoints,
            rebuild=rebuild,
            rebuild_requested=row["rebuild_requested"],
        )
