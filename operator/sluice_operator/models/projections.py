"""Projection: a read model kept up to date from one or more EventStreams.

The target is either a SQL table that Sluice maintains itself (one upsert per event type, columns taken from
the event payload by JSON path) or a Python entrypoint. Raising ``resetGeneration`` rebuilds the projection
from the start of its sources.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from sluice_operator.models.common import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResource,
    DatabaseReference,
    EntrypointHandler,
    JobPhase,
    Lag,
    ObjectName,
    PrinterColumn,
    Progress,
    ResourceDefinition,
    ResourceStatus,
    SluiceSchemaModel,
    ValidationRule,
    kubernetes_validations,
)

__all__ = [
    "COLUMN_NAME_PATTERN",
    "COLUMN_TYPES",
    "JSON_PATH_PATTERN",
    "TABLE_NAME_PATTERN",
    "Projection",
    "ProjectionSpec",
    "ProjectionStatus",
    "ProjectionTarget",
    "RebuildStatus",
    "SqlIndex",
    "SqlTarget",
    "Upsert",
]

COLUMN_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
"""A lower-case PostgreSQL column name."""
TABLE_NAME_PATTERN = r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$"
"""A lower-case PostgreSQL table name, optionally schema-qualified (``reporting.order_summary``)."""
JSON_PATH_PATTERN = r"^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$"
"""A JSON path into the event payload: ``$`` followed by ``.field`` and ``[index]`` steps (``$.order_id``)."""
MAXIMUM_COLUMNS = 256
MAXIMUM_KEY_COLUMNS = 16
MAXIMUM_UPSERTS = 128
MAXIMUM_SOURCES = 64
MAXIMUM_INDEXES = 32
MAXIMUM_INDEX_COLUMNS = 16
COLUMN_TYPES = ("text", "bigint", "integer", "numeric", "boolean", "timestamptz", "uuid", "jsonb")
"""The PostgreSQL types a column may declare (the runtime's ``sluice.services.projections.sql_target.COLUMN_TYPES``)."""

ColumnName = Annotated[str, Field(pattern=COLUMN_NAME_PATTERN, max_length=63)]
JsonPath = Annotated[str, Field(pattern=JSON_PATH_PATTERN, max_length=512)]
ColumnType = Literal["text", "bigint", "integer", "numeric", "boolean", "timestamptz", "uuid", "jsonb"]


class Upsert(SluiceSchemaModel):
    """For one event type: the row to insert, or update by key, from each event's payload."""

    event_type: str = Field(min_length=1, max_length=200)
    """The event type this upsert applies to, as registered in the runtime."""
    columns: dict[str, JsonPath] = Field(
        min_length=1,
        max_length=MAXIMUM_COLUMNS,
        json_schema_extra=kubernetes_validations(
            ValidationRule(
                rule=f"self.all(column, column.matches('{COLUMN_NAME_PATTERN}'))",
                message="column names must be lower-case PostgreSQL identifiers of at most 63 characters",
            )
        ),
    )
    """Column name → JSON path into the payload, such as ``order_id: $.order_id``."""

    @field_validator("columns")
    @classmethod
    def _column_names_are_identifiers(cls, columns: dict[str, str]) -> dict[str, str]:
        # Mirrors the CEL rule on this field's schema.
        for column in columns:
            if re.fullmatch(COLUMN_NAME_PATTERN, column) is None:
                raise ValueError("column names must be lower-case PostgreSQL identifiers of at most 63 characters")
        return columns


class SqlIndex(SluiceSchemaModel):
    """A B-tree index on columns of the table, created with each version's table."""

    columns: list[ColumnName] = Field(
        min_length=1, max_length=MAXIMUM_INDEX_COLUMNS, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """The indexed columns, in order (each a key column or a column some upsert sets)."""


def _table_columns(target: SqlTarget) -> set[str]:
    return set(target.key_columns).union(*(upsert.columns for upsert in target.upserts))


class SqlTarget(SluiceSchemaModel):
    """A table Sluice creates and keeps up to date."""

    validation_rules = (
        ValidationRule(
            rule="self.upserts.all(upsert, self.keyColumns.all(key, key in upsert.columns))",
            message="every upsert must map every key column",
            check=lambda target: all(key in upsert.columns for upsert in target.upserts for key in target.key_columns),
        ),
        ValidationRule(
            rule="!has(self.columnTypes) || self.columnTypes.all(column, column in self.keyColumns || "
            "self.upserts.exists(upsert, column in upsert.columns))",
            message="columnTypes may only name key columns and columns that some upsert sets",
            check=lambda target: set(target.column_types or {}) <= _table_columns(target),
        ),
        ValidationRule(
            rule="!has(self.indexes) || self.indexes.all(index, index.columns.all(column, "
            "column in self.keyColumns || self.upserts.exists(upsert, column in upsert.columns)))",
            message="indexes may only name key columns and columns that some upsert sets",
            check=lambda target: all(set(index.columns) <= _table_columns(target) for index in target.indexes or []),
        ),
    )

    table: str = Field(pattern=TABLE_NAME_PATTERN, max_length=127)
    """The table, optionally schema-qualified."""
    key_columns: list[ColumnName] = Field(
        min_length=1, max_length=MAXIMUM_KEY_COLUMNS, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """The primary key; an event whose key exists updates that row."""
    upserts: list[Upsert] = Field(min_length=1, max_length=MAXIMUM_UPSERTS)
    """One per event type that changes the table; other event types are skipped."""
    column_types: dict[str, ColumnType] | None = Field(
        default=None,
        max_length=MAXIMUM_COLUMNS,
        json_schema_extra=kubernetes_validations(
            ValidationRule(
                rule=f"self.all(column, column.matches('{COLUMN_NAME_PATTERN}'))",
                message="column names must be lower-case PostgreSQL identifiers of at most 63 characters",
            )
        ),
    )
    """Column name → PostgreSQL type (text, bigint, integer, numeric, boolean, timestamptz, uuid or jsonb).
    Undeclared: key columns are text, other columns jsonb. A value that does not convert dead-letters its
    event; changing a type rebuilds the table blue/green."""
    indexes: list[SqlIndex] | None = Field(default=None, max_length=MAXIMUM_INDEXES)
    """Indexes on the table's columns, such as ``[{columns: [customer_id]}]``."""

    @field_validator("column_types")
    @classmethod
    def _typed_columns_are_identifiers(cls, column_types: dict[str, str] | None) -> dict[str, str] | None:
        # Mirrors the CEL rule on this field's schema.
        for column in column_types or {}:
            if re.fullmatch(COLUMN_NAME_PATTERN, column) is None:
                raise ValueError("column names must be lower-case PostgreSQL identifiers of at most 63 characters")
        return column_types


class ProjectionTarget(SluiceSchemaModel):
    """Where the projection goes: exactly one of sql or entrypoint."""

    validation_rules = (
        ValidationRule(
            rule="has(self.sql) != has(self.entrypoint)",
            message="target needs exactly one of sql or entrypoint",
            check=lambda target: (target.sql is None) != (target.entrypoint is None),
        ),
    )

    sql: SqlTarget | None = None
    """A table maintained by Sluice."""
    entrypoint: EntrypointHandler | None = None
    """A Python function called with each batch of events."""


class ProjectionSpec(SluiceSchemaModel):
    """The desired projection."""

    sources: list[ObjectName] = Field(
        min_length=1, max_length=MAXIMUM_SOURCES, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """EventStreams (in this namespace) to project, read in global log order."""
    target: ProjectionTarget
    """Where the projection goes."""
    batch_size: int = Field(default=100, ge=1, le=100_000)
    """Events applied per transaction."""
    reset_generation: int = Field(
        default=0,
        ge=0,
        json_schema_extra=kubernetes_validations(
            ValidationRule(
                rule="self >= oldSelf",
                message="resetGeneration may only increase: raise it to rebuild the projection",
                reason="FieldValueForbidden",
            )
        ),
    )
    """Raise to rebuild the projection from the start of its sources."""
    database: DatabaseReference | None = None
    """Where the target table lives; the first source stream's database when omitted."""


class RebuildStatus(Progress):
    """A rebuild started by raising resetGeneration."""

    phase: JobPhase
    """Pending, Running, Succeeded or Failed."""


class ProjectionStatus(ResourceStatus):
    """The projection as last observed by the operator."""

    position: str | None = Field(default=None, max_length=64)
    """Global log position (``transaction.sequence``) of the last event applied."""
    lag: Lag | None = None
    """How far the projection is behind its sources."""
    rebuild: RebuildStatus | None = None
    """The current or last rebuild."""
    dead_letters: int | None = Field(default=None, ge=0)
    """Events the active version could not apply (a value that does not convert to its column's type, a
    key without a value, a payload that is not JSON): recorded with the reason and passed."""


class Projection(CustomResource):
    """A read model kept up to date from EventStreams: a SQL table or a Python entrypoint."""

    definition = ResourceDefinition(
        kind="Projection",
        plural="projections",
        short_names=("proj",),
        printer_columns=(
            PrinterColumn(
                name="Sources", json_path=".spec.sources", type="string", description="The EventStreams projected"
            ),
            PrinterColumn(
                name="Position",
                json_path=".status.position",
                type="string",
                description="Global log position of the last event applied",
            ),
            PrinterColumn(
                name="Lag", json_path=".status.lag.events", type="integer", description="Events not yet applied"
            ),
            READY_COLUMN,
            PrinterColumn(
                name="Table", json_path=".spec.target.sql.table", type="string", description="Target table", priority=1
            ),
            PrinterColumn(
                name="DeadLetters",
                json_path=".status.deadLetters",
                type="integer",
                description="Events the active version could not apply",
                priority=1,
            ),
            PrinterColumn(
                name="Rebuild",
                json_path=".status.rebuild.percent",
                type="integer",
                description="Progress of the current rebuild, in percent",
                priority=1,
            ),
            AGE_COLUMN,
        ),
    )

    kind: Literal["Projection"] = "Projection"
    spec: ProjectionSpec
    status: ProjectionStatus | None = None
