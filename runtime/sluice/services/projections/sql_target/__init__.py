"""Declarative SQL projections: the operator's ``target.sql`` (a table, key columns, and an upsert per
event type whose values come from the payload by JSON path), parsed, validated and maintained."""

from sluice.services.projections.sql_target.definition import (
    COLUMN_TYPES,
    SqlColumn,
    SqlIndex,
    SqlTarget,
    SqlUpsert,
    parse_sql_target,
)
from sluice.services.projections.sql_target.projection import sql_projection

__all__ = ["COLUMN_TYPES", "SqlColumn", "SqlIndex", "SqlTarget", "SqlUpsert", "parse_sql_target", "sql_projection"]
