"""``PostgresDatabase``: the PostgreSQL adapter's connection pool, as every part of the adapter borrows it.

One pool per store, created by ``open_postgres_backend`` with Sluice's schema on its search path; it
translates the driver's errors into Sluice errors (``driver_errors``). The stream log, the queues,
consumer groups, retention, sagas, replays, group dead letters and same-database projections all run
their statements on it; ``sluice.store.port.SqlDatabase`` is what services see of it: connections, and the
projections' checkpoints and source reads kept in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import asyncpg

from sluice.core.events import GlobalPosition, RecordedEvent
from sluice.storage.postgres import projection_sources
from sluice.storage.postgres.projection_checkpoints import PostgresCheckpointStore


class PostgresDatabase:
    """The store's connection pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        """A pooled connection with search_path set to Sluice's schema."""
        async with self.pool.acquire() as connection:
            yield connection

    def projection_checkpoints(self) -> PostgresCheckpointStore:
        """Projection checkpoints in this database (same-database mode)."""
        return PostgresCheckpointStore(self)

    async def read_projection_sources(
        self, sources: Sequence[str], after: GlobalPosition, limit: int
    ) -> list[RecordedEvent]:
        return await projection_sources.read_sources(self, sources, after, limit)

    async def projection_sources_behind(
        self, sources: Sequence[str], after: GlobalPosition
    ) -> tuple[int, datetime | None]:
        return await projection_sources.sources_behind(self, sources, after)

    async def projection_sources_head(self, sources: Sequence[str]) -> GlobalPosition | None:
        return await projection_sources.sources_head(self, sources)
