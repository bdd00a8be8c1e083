"""Named SQL in .sql files: the one reader of ``-- name:`` blocks, for every module with SQL of its own.

The PostgreSQL adapter keeps its queries in ``sluice/storage/postgres/sql/`` (``storage/postgres/queries.py``);
a service that runs its own statements in the adapter's database (declarative SQL targets of projections)
keeps them in a ``sql/`` folder beside its modules. Each file is read and parsed once.

A plain reader: aiosql does the same job but wraps each query in its own calling convention; Sluice needs
the driver's own API (prepared statements, ``fetch``/``fetchrow`` per call site), so it stays this small.
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


def read_package_sql(package: str, relative_path: str) -> str:
    """The text of ``sql/<relative_path>`` in ``package`` (a dotted package name)."""
    return importlib.resources.files(package).joinpath("sql", relative_path).read_text("utf-8")


@functools.cache
def package_queries(package: str, file_name: str) -> dict[str, str]:
    """The named queries of ``sql/<file_name>`` in ``package``, read and parsed once."""
    return parse_named_queries(read_package_sql(package, file_name))
