"""``SqlConnection``: what services see of a connection of the adapter's SQL database.

Same-database projections run their handlers' SQL in the transaction that moves the checkpoint
(``ProjectionContext.connection``). At run time it is the PostgreSQL driver's pooled connection itself
(asyncpg's, with its whole public API); this Protocol names the part Sluice's own code uses, so the
services and the store layer never import the driver or the adapter. Inside a transaction its statements
raise the driver's errors; what escapes the adapter's ``acquire()`` block is translated into Sluice errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class SqlConnection(Protocol):
    """A connection borrowed from the store's SQL database (asyncpg's ``execute``, ``fetch``...)."""

    async def execute(self, query: str, *args: Any) -> str:
        """Run a statement; its status tag (``"UPDATE 1"``)."""
        ...

    async def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per argument tuple."""
        ...

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """Every row of a query (records indexable by position and by column name)."""
        ...

    async def fetchrow(self, query: str, *args: Any) -> Any:
        """The first row of a query, or None."""
        ...

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any:
        """One value of the first row of a query, or None."""
        ...

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> AbstractAsyncContextManager[Any]:
        """A transaction (a savepoint when one is already open), as ``async with``."""
        ...
