"""``PostgresDatabase``: the PostgreSQL adapter's connection pool, as every part of the adapter borrows it.

One pool per store, created by ``open_postgres_backend`` with Sluice's schema on its search path; it
translates the driver's errors into Sluice errors (``driver_errors``). The stream log, the queues,
consumer groups, retention, sagas, replays, group dead letters and same-database projections all run
their statements on it; ``sluice.store.port.SqlDatabase`` is what services see of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg


class PostgresDatabase:
    """The store's connection pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        """A pooled connection with search_path set to Sluice's schema."""
        async with self.pool.acquire() as connection:
            yield connection
