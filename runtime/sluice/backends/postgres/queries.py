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


QUERY_FILES = ("queries.sql", "consumer_groups.sql")


@functools.cache
def queries() -> dict[str, str]:
    """Every named query of the PostgreSQL backend (names are unique across the files)."""
    return parse_named_queries("\n".join(read_sql_file(name) for name in QUERY_FILES))


def query(name: str) -> str:
    """One named query; a KeyError names a query that does not exist."""
    return queries()[name]
