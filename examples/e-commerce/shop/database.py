"""The shop's tables and named queries (SQL lives in schema.sql and queries.sql beside this file)."""

from __future__ import annotations

import functools
import pathlib
from typing import TYPE_CHECKING

from shop.events import STREAMS
from sluice.core.streams import StreamConfig
from sluice.storage.postgres.queries import parse_named_queries
from sluice.storage.postgres.store import PostgresEventStore
from sluice.store import EventStore

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]

HERE = pathlib.Path(__file__).parent


@functools.cache
def _queries() -> dict[str, str]:
    return parse_named_queries((HERE / "queries.sql").read_text("utf-8"))


def query(name: str) -> str:
    return _queries()[name]


def postgres(store: EventStore) -> PostgresEventStore:
    """The shop keeps its own tables beside Sluice's, so it needs a PostgreSQL store."""
    if not isinstance(store, PostgresEventStore):
        raise TypeError("the e-commerce example needs a postgresql:// store")
    return store


async def install(store: EventStore, stock: dict[str, int]) -> None:
    """Create the shop's streams and tables (if missing) and set the stock levels."""
    for name in STREAMS:
        await store.create_stream(StreamConfig(name=name))
    async with postgres(store).acquire() as connection:
        await connection.execute((HERE / "schema.sql").read_text("utf-8"))
        for sku, available in stock.items():
            await connection.execute(query("set_stock"), sku, available)
