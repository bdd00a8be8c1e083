"""Reading a projection's sources in PostgreSQL: the global log restricted to some streams, its lag and its
head (``SqlDatabase.read_projection_sources``, ``projection_sources_behind``, ``projection_sources_head``).

One query reads the sources' events below the oldest running transaction, so an event that commits late is
never skipped (as ``read_all``); another counts the lag up to the newest committed event. The SQL is in
``sql/projections.sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sluice.core.events import GlobalPosition, RecordedEvent
from sluice.storage.postgres.projection_checkpoints import projection_query

if TYPE_CHECKING:
    from sluice.store.port import SqlDatabase


async def read_sources(
    database: SqlDatabase, sources: Sequence[str], after: GlobalPosition, limit: int
) -> list[RecordedEvent]:
    """Up to ``limit`` events of ``sources`` after ``after``, in global log order."""
    async with database.acquire() as connection:
        rows = await connection.fetch(
            projection_query("projection_read_sources"),
            str(after.transaction),
            after.sequence,
            limit,
            list(sources),
        )
    return [RecordedEvent(row, row[11], row[12]) for row in rows]


async def sources_behind(
    database: SqlDatabase, sources: Sequence[str], after: GlobalPosition
) -> tuple[int, datetime | None]:
    """How many events of ``sources`` come after ``after``, and when the first of them was stored."""
    async with database.acquire() as connection:
        row = await connection.fetchrow(
            projection_query("projection_sources_behind"), str(after.transaction), after.sequence, list(sources)
        )
    assert row is not None  # an aggregate always returns its row
    return int(row["events"]), row["oldest"]


async def sources_head(database: SqlDatabase, sources: Sequence[str]) -> GlobalPosition | None:
    """The position of the last readable event of ``sources`` (None: none)."""
    async with database.acquire() as connection:
        row = await connection.fetchrow(projection_query("projection_sources_head"), list(sources))
    return None if row is None else GlobalPosition(int(row[0]), int(row[1]))
