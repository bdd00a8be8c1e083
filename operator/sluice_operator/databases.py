"""The operator's database connections: one store per database and schema, migrated once per process.

The first use of a database applies Sluice's migrations (``sluice.connect(..., migrate=True)``, under the
migrations' advisory lock, so several operators or pods starting together migrate once). Every call is bounded
by a timeout, and a failure to reach the database becomes ``DatabaseUnavailableError``, which the reconcilers
report as Ready=False instead of hanging; the store is then dropped and reopened on the next use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sluice
from sluice.core.errors import UnavailableError
from sluice.store import EventStore
from sluice_operator.errors import DatabaseUnavailableError
from sluice_operator.reconcile.databases import DatabaseTarget

__all__ = ["Databases"]

T = TypeVar("T")
UNAVAILABLE_ERRORS = (UnavailableError, OSError, TimeoutError)
"""What counts as "the database is unreachable or unusable" rather than a mistake in the request: the
unavailable category (the store translates every driver error into Sluice errors, docs/errors.md; a
missing or newer schema is a MigrationError there too) and the call's timeout."""


class Databases:
    """Open stores by database target, migrate each target once, and bound every call by a timeout."""

    def __init__(self, *, timeout_seconds: float) -> None:
        self._timeout_seconds = timeout_seconds
        self._stores: dict[DatabaseTarget, EventStore] = {}
        self._migrated: set[DatabaseTarget] = set()
        self._locks: dict[DatabaseTarget, asyncio.Lock] = {}

    def is_migrated(self, target: DatabaseTarget) -> bool:
        """Whether this process has applied (or confirmed) the target's migrations."""
        return target in self._migrated

    async def close(self) -> None:
        stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            await store.close()

    async def run(
        self,
        target: DatabaseTarget,
        operation: Callable[[EventStore], Awaitable[T]],
        *,
        timeout_seconds: float | None = None,
    ) -> T:
        """Run ``operation`` with the target's store; DatabaseUnavailableError when the database fails.

        ``timeout_seconds`` replaces the operator's database timeout for long operations (pruning)."""
        try:
            async with asyncio.timeout(timeout_seconds or self._timeout_seconds):
                store = await self._store(target)
                return await operation(store)
        except UNAVAILABLE_ERRORS as error:
            await self._discard(target)
            detail = str(error) or type(error).__name__
            raise DatabaseUnavailableError(f"database {target.display_name}: {detail}") from error

    async def _store(self, target: DatabaseTarget) -> EventStore:
        # One lock per database, so an unreachable database never delays the others.
        async with self._locks.setdefault(target, asyncio.Lock()):
            store = self._stores.get(target)
            if store is not None:
                return store
            store = await sluice.connect(
                target.url,
                schema_name=target.schema_name,
                migrate=target not in self._migrated,  # later stores of the target only check the schema
                pool_min_size=0,
                pool_max_size=2,
            )
            self._migrated.add(target)
            self._stores[target] = store
            return store

    async def _discard(self, target: DatabaseTarget) -> None:
        store = self._stores.pop(target, None)
        if store is not None:
            with contextlib.suppress(*UNAVAILABLE_ERRORS):
                await store.close()
