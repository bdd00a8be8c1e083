"""Reading the end-to-end example's read model (the Projection's table) to show it: a few rows, a count, and
a query on it (revenue per customer), as a user of the read model would write them.

The example declares the columns' types (``columnTypes`` in examples/end-to-end/30-order-summary.yaml), so
the values come back as PostgreSQL holds them: ``'customer_id': 'ada'``, ``'total': 1000``. A column left
``jsonb`` is decoded from its JSON here (asyncpg hands ``jsonb`` over as JSON text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import asyncpg

from sluice_devkit.platform_errors import PlatformError

__all__ = ["REVENUE_PER_CUSTOMER_SQL", "CustomerRevenue", "ReadModelRows", "order_summary_rows", "revenue_per_customer"]

_QUALIFIED_TABLE = re.compile(r"(?:([a-z_][a-z0-9_]*)\.)?([a-z_][a-z0-9_]*)")
REVENUE_PER_CUSTOMER_SQL = (
    "SELECT customer_id, count(*) AS orders, sum(total)::bigint AS revenue FROM {table} "
    "GROUP BY customer_id ORDER BY revenue DESC, customer_id LIMIT $1"
)
"""The query the platform prints with its result ({table}: the read model's view, quoted)."""


@dataclass(frozen=True)
class ReadModelRows:
    total: int
    rows: list[dict[str, object]]


@dataclass(frozen=True)
class CustomerRevenue:
    customer_id: str
    orders: int
    revenue: int


def _quoted(table: str) -> str:
    matched = _QUALIFIED_TABLE.fullmatch(table)
    if matched is None:
        raise PlatformError(f"not a table name: {table!r}")
    return ".".join(f'"{part}"' for part in matched.groups() if part is not None)


async def _connect(database_url: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(database_url)
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return connection


async def order_summary_rows(database_url: str, table: str, *, limit: int) -> ReadModelRows:
    """The table's row count and its first ``limit`` rows by key, with plain values (``jsonb`` decoded)."""
    quoted = _quoted(table)
    connection = await _connect(database_url)
    try:
        total = await connection.fetchval(f"SELECT count(*) FROM {quoted}")
        records = await connection.fetch(f"SELECT * FROM {quoted} ORDER BY 1 LIMIT $1", limit)
    finally:
        await connection.close()
    return ReadModelRows(total=int(total), rows=[dict(record) for record in records])


async def revenue_per_customer(database_url: str, table: str, *, limit: int) -> list[CustomerRevenue]:
    """``REVENUE_PER_CUSTOMER_SQL`` on the read model: the ``limit`` customers with the highest revenue."""
    connection = await _connect(database_url)
    try:
        records = await connection.fetch(REVENUE_PER_CUSTOMER_SQL.format(table=_quoted(table)), limit)
    finally:
        await connection.close()
    return [
        CustomerRevenue(customer_id=record["customer_id"], orders=record["orders"], revenue=record["revenue"])
        for record in records
    ]
