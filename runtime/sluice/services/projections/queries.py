"""The named queries of projections, loaded once from ``storage/postgres/sql/projections.sql``."""

from __future__ import annotations

from sluice.storage.postgres.queries import named_queries


def projection_query(name: str) -> str:
    """One named query (or statement template) of projections.sql; KeyError for an unknown name."""
    return named_queries("projections.sql")[name]
