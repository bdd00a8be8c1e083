"""The declarative SQL target of a Projection (the JSON of the operator's ``SqlTarget.to_manifest()``),
parsed and validated: ``{"table", "keyColumns", "upserts": [{"eventType", "columns": {column: path}}]}``,
optionally ``"columnTypes": {column: type}`` (``COLUMN_TYPES``; keys default to ``text``, other columns
to ``jsonb``, what every target was before types existed) and ``"indexes": [{"columns": [column, ...]}]``.

Identifiers are checked against the operator's patterns (copied here: the runtime must not import the
operator) before any SQL sees them; anything else raises ProjectionTargetError.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from sluice.core.errors import ProjectionTargetError
from sluice.services.projections.sql_target.json_paths import parse_json_path

COLUMN_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""Copied from ``sluice_operator.models.projections.COLUMN_NAME_PATTERN``."""
TABLE_NAME_PATTERN = re.compile(r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$")
"""Copied from ``sluice_operator.models.projections.TABLE_NAME_PATTERN``."""
MAXIMUM_COLUMNS = 256
MAXIMUM_KEY_COLUMNS = 16
MAXIMUM_UPSERTS = 128
MAXIMUM_INDEXES = 32
MAXIMUM_INDEX_COLUMNS = 16
DEFAULT_SCHEMA = "public"
COLUMN_TYPES = ("text", "bigint", "integer", "numeric", "boolean", "timestamptz", "uuid", "jsonb")
"""The types a column may declare (the operator's ``ColumnType``); only these words ever reach SQL."""
DEFAULT_KEY_TYPE = "text"
DEFAULT_COLUMN_TYPE = "jsonb"


@dataclasses.dataclass(frozen=True, slots=True)
class SqlColumn:
    """One column an upsert sets: its name, the JSON path it comes from, and whether it is a key."""

    name: str
    path: str
    steps: tuple[str | int, ...]
    key: bool


@dataclasses.dataclass(frozen=True, slots=True)
class SqlUpsert:
    """For one event type: the row to insert, or update by key."""

    event_type: str
    columns: tuple[SqlColumn, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class SqlIndex:
    """A (non-unique, B-tree) index on columns of the table, created with each version's table."""

    columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class SqlTarget:
    """A table Sluice creates and keeps up to date (``schema.table``; ``public`` when not qualified)."""

    schema: str
    table: str
    key_columns: tuple[str, ...]
    upserts: tuple[SqlUpsert, ...]
    column_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Declared types only; ``column_type`` gives every column's."""
    indexes: tuple[SqlIndex, ...] = ()

    def column_type(self, name: str) -> str:
        """The PostgreSQL type of column ``name``: declared, else ``text`` for a key and ``jsonb`` otherwise."""
        default = DEFAULT_KEY_TYPE if name in self.key_columns else DEFAULT_COLUMN_TYPE
        return self.column_types.get(name, default)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column of the table: the keys, then the others in order of first appearance."""
        names = dict.fromkeys(self.key_columns)
        for upsert in self.upserts:
            names.update(dict.fromkeys(column.name for column in upsert.columns))
        return tuple(names)


def _fail(message: str) -> ProjectionTargetError:
    return ProjectionTargetError(f"invalid SQL projection target: {message}")


def _column_name(name: object) -> str:
    if not isinstance(name, str) or COLUMN_NAME_PATTERN.fullmatch(name) is None:
        raise _fail(f"column name {name!r} is not a lower-case PostgreSQL identifier of at most 63 characters")
    return name


def _object(value: object, what: str, keys: set[str], optional: frozenset[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{what} must be a JSON object")
    unknown = set(value) - keys - optional
    missing = keys - set(value)
    if unknown or missing:
        raise _fail(
            f"{what} needs exactly the keys {sorted(keys)}"
            + (f" (optionally also {sorted(optional)})" if optional else "")
            + (f"; unknown: {sorted(unknown)}" if unknown else "")
            + (f"; missing: {sorted(missing)}" if missing else "")
        )
    return value


def parse_sql_target(manifest: str | Mapping[str, Any]) -> SqlTarget:
    """Parse and validate a SQL target given as JSON text or as the decoded object."""
    if isinstance(manifest, str):
        try:
            manifest = json.loads(manifest)
        except ValueError as error:
            raise _fail(f"not JSON: {error}") from error
    document = _object(
        manifest, "the target", {"table", "keyColumns", "upserts"}, frozenset({"columnTypes", "indexes"})
    )
    table = document["table"]
    if not isinstance(table, str) or len(table) > 127 or TABLE_NAME_PATTERN.fullmatch(table) is None:
        raise _fail(f"table {table!r} is not a lower-case PostgreSQL table name, optionally schema-qualified")
    schema, _, table_name = table.rpartition(".")
    keys = document["keyColumns"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAXIMUM_KEY_COLUMNS:
        raise _fail(f"keyColumns must be a list of 1 to {MAXIMUM_KEY_COLUMNS} column names")
    key_columns = tuple(_column_name(key) for key in keys)
    if len(set(key_columns)) != len(key_columns):
        raise _fail("keyColumns must not repeat a column")
    upserts_document = document["upserts"]
    if not isinstance(upserts_document, list) or not 1 <= len(upserts_document) <= MAXIMUM_UPSERTS:
        raise _fail(f"upserts must be a list of 1 to {MAXIMUM_UPSERTS} upserts")
    upserts = tuple(_upsert(entry, key_columns) for entry in upserts_document)
    target = SqlTarget(schema or DEFAULT_SCHEMA, table_name, key_columns, upserts)
    if len(target.column_names) > MAXIMUM_COLUMNS:
        raise _fail(f"a table has at most {MAXIMUM_COLUMNS} columns")
    column_types = _column_types(document.get("columnTypes", {}), target.column_names)
    indexes = _indexes(document.get("indexes", []), target.column_names)
    return dataclasses.replace(target, column_types=column_types, indexes=indexes)


def _column_types(document: object, column_names: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(document, dict):
        raise _fail("columnTypes must map column names to types")
    column_types: dict[str, str] = {}
    for name, column_type in document.items():
        if _column_name(name) not in column_names:
            raise _fail(f"columnTypes names {name!r}, which is not a key column nor set by any upsert")
        if column_type not in COLUMN_TYPES:
            raise _fail(f"column {name!r} has type {column_type!r}; the types are {', '.join(COLUMN_TYPES)}")
        column_types[name] = column_type
    return column_types


def _indexes(document: object, column_names: tuple[str, ...]) -> tuple[SqlIndex, ...]:
    if not isinstance(document, list) or len(document) > MAXIMUM_INDEXES:
        raise _fail(f"indexes must be a list of at most {MAXIMUM_INDEXES} indexes")
    indexes: list[SqlIndex] = []
    for entry in document:
        columns = _object(entry, "each index", {"columns"})["columns"]
        if not isinstance(columns, list) or not 1 <= len(columns) <= MAXIMUM_INDEX_COLUMNS:
            raise _fail(f"the columns of an index must be a list of 1 to {MAXIMUM_INDEX_COLUMNS} column names")
        for column in columns:
            if _column_name(column) not in column_names:
                raise _fail(f"an index names column {column!r}, which is not a key column nor set by any upsert")
        if len(set(columns)) != len(columns):
            raise _fail(f"the index on {columns} repeats a column")
        index = SqlIndex(tuple(columns))
        if index in indexes:
            raise _fail(f"the index on {columns} is declared twice")
        indexes.append(index)
    return tuple(indexes)


def _upsert(entry: object, key_columns: tuple[str, ...]) -> SqlUpsert:
    document = _object(entry, "each upsert", {"eventType", "columns"})
    event_type = document["eventType"]
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 200:
        raise _fail("eventType must be a string of 1 to 200 characters")
    columns_document = document["columns"]
    if not isinstance(columns_document, dict) or not 1 <= len(columns_document) <= MAXIMUM_COLUMNS:
        raise _fail(f"the columns of {event_type!r} must map 1 to {MAXIMUM_COLUMNS} column names to JSON paths")
    columns = tuple(
        SqlColumn(_column_name(name), path, parse_json_path(path), name in key_columns)
        for name, path in columns_document.items()
    )
    missing = [key for key in key_columns if key not in columns_document]
    if missing:
        raise _fail(f"the upsert of {event_type!r} must map every key column (missing: {missing})")
    return SqlUpsert(event_type, columns)
