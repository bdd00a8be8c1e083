"""Reading the end-to-end example's read model (the Projection's table) to show it: a few rows and a count."""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from sluice_operator.local.platform_errors import PlatformError

__all__ = ["ReadModelRows", "order_summary_rows"]

_QUALIFIED_TABLE = re.compile(r"(?:([a-z_][a-z0-9_]*)\.)?([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class ReadModelRows:
    total: int
    rows: list[dict[str, object]]


def _quoted(table: str) -> str:
    matched = _QUALIFIED_TABLE.fullmatch(table)
    if matched is None:
        raise PlatformError(f"not a table name: {table!r}")
    return ".".join(f'"{part}"' for part in matched.groups() if part is not None)


async def order_summary_rows(database_url: str, table: str, *, limit: int) -> ReadModelRows:
    """The table's row count and its first ``limit`` rows by key (JSON values decoded to text)."""
    connection = await asyncpg.connect(database_url)
    try:
        quoted = _quoted(table)
        total = await connection.fetchval(f"SELECT count(*) FROM {quoted}")
        records = await connection.fetch(f"SELECT * FROM {quoted} ORDER BY 1 LIMIT $1", limit)
    finally:
        await connection.close()
    return ReadModelRows(total=int(total), rows=[dict(record) for record in records])
