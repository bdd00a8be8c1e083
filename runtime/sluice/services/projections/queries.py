"""The statements of declarative SQL targets, loaded once from ``sql/sql_target.sql`` beside this module.

They write the user's read model (not Sluice's schema), so they belong to the service, which runs them on
the connection of a same-database projection's transaction (``store.backend.database``).
"""

from __future__ import annotations

from sluice.store.named_sql import package_queries


def projection_query(name: str) -> str:
    """One named statement template of sql_target.sql; KeyError for an unknown name."""
    return package_queries(__name__.rpartition(".")[0], "sql_target.sql")[name]
