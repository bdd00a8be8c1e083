"""Loads the named queries in ``sql/*.sql`` once, so SQL lives in .sql files, not in Python.

A plain reader of ``-- name:`` blocks. aiosql does the same job but wraps each query in its own
calling convention; Sluice needs asyncpg's own API (prepared statements, ``fetch``/``fetchrow``
per call site), so the loader stays this small instead.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

_NAME_LINE = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


def parse_named_queries(text: str) -> dict[str, str]:
    """Split a .sql file into {name: sql}. Names must be unique."""
    queries: dict[str, str] = {}
    parts = _NAME_LINE.split(text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


def read_sql_file(relative_path: str) -> str:
    """The text of a file under ``sql/`` in this package."""
    return importlib.resources.files(__package__).joinpath("sql", relative_path).read_text("utf-8")


@functools.cache
def named_queries(file_name: str) -> dict[str, str]:
    """The named queries of ``sql/<file_name>``, read and parsed once (the one loader of the backend's
    SQL: the store, consumer groups, retention, sagas, replays, dead letters and projections use it)."""
    return parse_named_queries(read_sql_file(file_name))


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
