"""The named queries of projections, loaded once from ``backends/postgres/sql/projections.sql``."""

from __future__ import annotations

import functools

from sluice.backends.postgres.queries import parse_named_queries, read_sql_file


@functools.cache
def _queries() -> dict[str, str]:
    return parse_named_queries(read_sql_file("projections.sql"))


def projection_query(name: str) -> str:
    """One named query (or statement template) of projections.sql; KeyError for an unknown name."""
    return _queries()[name]
