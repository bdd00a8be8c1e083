"""Loads the named queries in ``sql/*.sql`` once, so SQL lives in .sql files, not in Python (the reader
of ``-- name:`` blocks is ``sluice.store.named_sql``, shared with services that keep SQL of their own).
"""

from __future__ import annotations

import functools

from sluice.store.named_sql import package_queries, parse_named_queries, read_package_sql

__all__ = ["STORE_QUERY_FILES", "named_queries", "parse_named_queries", "queries", "query", "read_sql_file"]


def read_sql_file(relative_path: str) -> str:
    """The text of a file under ``sql/`` in this package."""
    return read_package_sql(__name__.rpartition(".")[0], relative_path)


def named_queries(file_name: str) -> dict[str, str]:
    """The named queries of ``sql/<file_name>``, read and parsed once (the one loader of the backend's
    SQL: the store, consumer groups, retention, sagas, replays, dead letters and projection checkpoints)."""
    return package_queries(__name__.rpartition(".")[0], file_name)


STORE_QUERY_FILES = ("queries.sql", "consumer_groups.sql")


@functools.cache
def queries() -> dict[str, str]:
    """Every named query of the store and its consumer groups (names are unique across the files)."""
    merged: dict[str, str] = {}
    for file_name in STORE_QUERY_FILES:
        for name, sql in named_queries(file_name).items():
            if name in merged:
                raise ValueError(f"query {name!r} is defined twice")
            merged[name] = sql
    return merged


def query(name: str) -> str:
    """One named query of the store; a KeyError names a query that does not exist."""
    return queries()[name]
