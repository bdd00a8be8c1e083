"""The SQL of a declarative target, filled into the templates of ``sql/sql_target.sql``.

Only identifiers are ever placed in the text: names validated by ``definition`` and quoted by
``sluice.core.names.quote_identifier``; values are always bound parameters (``$1``, ``$2::jsonb``).

Storage: version N of the read model is the table ``<table>__v<N>`` (shortened with a hash of the name when
that would be too long), and ``<table>`` is a view on the active version. A blue/green rebuild builds the
next version's table beside it and replaces the view when it has caught up, in the transaction that
records the switch. Each column has its declared type (``definition.COLUMN_TYPES``; by default keys are
``text`` and other columns ``jsonb``): PostgreSQL converts the value found at its path in the statement
that writes it (``jsonb`` as is; otherwise the JSON value's text, a string unquoted, cast to the type), and
the statement returns the events whose values do not convert, which the projection dead-letters.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

from sluice.core.errors import InvalidNameError, ProjectionTargetError
from sluice.core.names import quote_identifier
from sluice.services.projections.queries import projection_query
from sluice.services.projections.sql_target.definition import (
    COLUMN_NAME_PATTERN,
    COLUMN_TYPES,
    SqlColumn,
    SqlIndex,
    SqlTarget,
    SqlUpsert,
)

MAXIMUM_QUOTED_NAME_LENGTH = 48
"""``quote_identifier`` accepts names of at most 48 characters (Sluice's schema-name rule)."""
MAXIMUM_INDEXED_BYTES = 2600
"""What one B-tree index entry surely holds (2,704 bytes with 8 kB pages, less its headers): an event whose
values of one index (or the primary key) are longer is dead-lettered instead of failing its whole batch."""
VARIABLE_LENGTH_TYPES = ("text", "jsonb", "numeric")
"""Column types whose values can outgrow an index entry (the others have a small fixed size)."""
CATALOG_TYPE_NAMES = {"timestamptz": "timestamp with time zone"}
"""How ``format_type`` spells a column type, where it differs from the name a target declares."""


def catalog_type_name(column_type: str) -> str:
    """``timestamptz`` → ``timestamp with time zone``: a declared type as PostgreSQL's catalog shows it."""
    return CATALOG_TYPE_NAMES.get(column_type, column_type)


def _checked_type(column_type: str) -> str:
    # Definition validated it already; this keeps anything else out of the SQL text for good.
    if column_type not in COLUMN_TYPES:
        raise ProjectionTargetError(f"invalid SQL projection target: unknown column type {column_type!r}")
    return column_type


def quoted(name: str) -> str:
    """A validated identifier, quoted; ProjectionTargetError if ``quote_identifier`` refuses it."""
    try:
        return quote_identifier(name)
    except InvalidNameError as error:
        raise ProjectionTargetError(
            f"invalid SQL projection target: {name!r} must be a lower-case identifier of at most "
            f"{MAXIMUM_QUOTED_NAME_LENGTH} characters"
        ) from error


def version_table_name(table: str, version: int) -> str:
    """``order_summary`` → ``order_summary__v2``; long names keep a prefix and a hash of the whole name."""
    suffix = f"__v{version}"
    if len(table) + len(suffix) <= MAXIMUM_QUOTED_NAME_LENGTH:
        return table + suffix
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    return f"{table[: MAXIMUM_QUOTED_NAME_LENGTH - len(suffix) - 9]}_{digest}{suffix}"


def index_name(version_table: str, index: SqlIndex) -> str:
    """``order_summary__v2`` and (customer_id) → ``order_summary__v2_ix_<hash of the columns>`` (in bounds)."""
    digest = hashlib.sha256(f"{version_table}({','.join(index.columns)})".encode()).hexdigest()[:12]
    return f"{version_table[: MAXIMUM_QUOTED_NAME_LENGTH - 16]}_ix_{digest}"


@dataclasses.dataclass(frozen=True)
class _ExtractedValue:
    """The SQL names of one column's value in the upsert: the jsonb at its path and that value's text."""

    jsonb: str
    text: str


def cast_problem(text: str, column_type: str) -> str:
    """SQL giving why the text ``text`` (an SQL expression) does not convert to ``column_type``, or NULL when it
    converts or is NULL. PostgreSQL 15 has no ``pg_input_is_valid``, so the exact answer is
    ``projection_cast_error``, which tries the cast in a subtransaction (about 2 us a value). Texts of the
    forms JSON values nearly always take are known to convert without it (``CERTAINLY_CONVERTS``)."""
    column_type = _checked_type(column_type)
    certain = CERTAINLY_CONVERTS.get(column_type)
    exact = f"projection_cast_error({text}, '{column_type}')"
    if certain is None:
        return f"CASE WHEN {text} IS NOT NULL THEN {exact} END"
    return f"CASE WHEN {text} IS NOT NULL AND NOT ({certain.format(text=text)}) THEN {exact} END"


CERTAINLY_CONVERTS = {
    # Unsigned digits: at most 18 fit any bigint and 9 any integer (signed values take the exact check).
    "bigint": "length({text}) BETWEEN 1 AND 18 AND ltrim({text}, '0123456789') = ''",
    "integer": "length({text}) BETWEEN 1 AND 9 AND ltrim({text}, '0123456789') = ''",
    # Unsigned digits with at most one point, far below numeric's limits (131,072 digits before the point).
    "numeric": "length({text}) BETWEEN 1 AND 1000 AND {text} <> '.' AND "
    "translate({text}, '0123456789', '') IN ('', '.')",
    # What a JSON boolean's text is.
    "boolean": "{text} IN ('true', 'false')",
    # The canonical lower-case form: 32 hexadecimal digits with hyphens after the 8th, 12th, 16th and 20th.
    "uuid": "length({text}) = 36 AND translate({text}, '0123456789abcdef', '') = '----' AND "
    "substr({text}, 9, 1) = '-' AND substr({text}, 14, 1) = '-' AND substr({text}, 19, 1) = '-' AND "
    "substr({text}, 24, 1) = '-'",
}
"""Per column type, an SQL condition on a text (``{text}``) that holds only for texts the type's input
function accepts; a text it does not hold for is checked exactly. Timestamps have none (their validity
depends on the calendar)."""


class SqlTargetStatements:
    """Every statement a target needs, per read-model version."""

    def __init__(self, target: SqlTarget) -> None:
        self.target = target
        self.schema = quoted(target.schema)
        self.view = f"{self.schema}.{quoted(target.table)}"
        # A SqlTarget built in code skips parse_sql_target: names and types are checked again here, as
        # some of them also appear inside string literals of the statements (the reasons of dead letters).
        indexed = [column for index in target.indexes for column in index.columns]
        for column in (*target.column_names, *indexed, *target.column_types):
            if not isinstance(column, str) or COLUMN_NAME_PATTERN.fullmatch(column) is None:
                raise ProjectionTargetError(f"invalid SQL projection target: column name {column!r}")
            quoted(column)
        for column_type in target.column_types.values():
            _checked_type(column_type)

    def table(self, version: int) -> str:
        return f"{self.schema}.{quoted(version_table_name(self.target.table, version))}"

    def create_schema(self) -> str:
        return projection_query("sql_target_create_schema").format(schema=self.schema)

    def create_table(self, version: int) -> str:
        target = self.target
        columns = ", ".join(
            f"{quoted(name)} {_checked_type(target.column_type(name))}"
            + (" NOT NULL" if name in target.key_columns else "")
            for name in target.column_names
        )
        keys = ", ".join(quoted(key) for key in target.key_columns)
        return projection_query("sql_target_create_table").format(table=self.table(version), columns=columns, keys=keys)

    def add_columns(self, version: int) -> list[str]:
        """For a table created by an earlier target: its non-key columns added when missing."""
        template = projection_query("sql_target_add_column")
        return [
            template.format(
                table=self.table(version), column=quoted(name), type=_checked_type(self.target.column_type(name))
            )
            for name in self.target.column_names
            if name not in self.target.key_columns
        ]

    def create_indexes(self, version: int) -> list[str]:
        """The declared indexes of ``version``'s table (each created unless it exists)."""
        template = projection_query("sql_target_create_index")
        version_table = version_table_name(self.target.table, version)
        return [
            template.format(
                index=quoted(index_name(version_table, index)),
                table=self.table(version),
                columns=", ".join(quoted(column) for column in index.columns),
            )
            for index in self.target.indexes
        ]

    def type_mismatches(self, catalog_types: dict[str, str], catalog_keys: set[str]) -> list[str]:
        """How a version's table differs from the target in what only a new table can change: its columns'
        types (``catalog_types``: name → ``format_type``) and its primary key (``catalog_keys``). Columns the
        table lacks are not differences (they are added)."""
        target = self.target
        differences = [
            f"column {name} is {catalog_types[name]}, the target declares {target.column_type(name)}"
            for name in target.column_names
            if name in catalog_types and catalog_types[name] != catalog_type_name(target.column_type(name))
        ]
        if catalog_types and catalog_keys != set(target.key_columns):
            differences.append(
                f"the primary key is ({', '.join(sorted(catalog_keys))}), the target's keyColumns are "
                f"({', '.join(target.key_columns)})"
            )
        return differences

    def point_view(self, version: int) -> str:
        """Point the view at ``version``'s table: replaced in place (keeping views built on it) when its
        columns allow it, else dropped and created again (the target's columns changed order)."""
        columns = ", ".join(quoted(column) for column in self.target.column_names)
        return projection_query("sql_target_point_view").format(
            view=self.view, columns=columns, table=self.table(version)
        )

    def truncate(self, version: int) -> str:
        return projection_query("sql_target_truncate").format(table=self.table(version))

    def drop_table(self, version: int) -> str:
        return projection_query("sql_target_drop_table").format(table=self.table(version))

    @functools.cache  # noqa: B019  (one instance per target, kept for the life of the projection)
    def upsert_payloads(self, upsert: SqlUpsert, version: int) -> str:
        """The upsert for a whole run of events: ``$1`` their payloads, then each column's path as a bound
        strict SQL/JSON path (``json_path_parameters``); PostgreSQL extracts and converts the values and
        returns ``(position, problem)`` for each event it could not apply (position: 1-based in the run)."""
        columns = upsert.columns
        numbers = range(1, len(columns) + 1)
        values = [_ExtractedValue(f"r{number}", f"t{number}") for number in numbers]
        extracted = [
            f"jsonb_path_query_first(batch.payload, ${number}::jsonpath, '{{}}', true) AS {value.jsonb}"
            for number, value in enumerate(values, 2)
        ]
        texts = [f"extracted.{value.jsonb} #>> '{{}}' AS {value.text}" for value in values]
        typed = [self._converted(value, column) for value, column in zip(values, columns, strict=True)]
        aliases = [f"c{number}" for number in numbers]
        key_expressions = [expression for expression, column in zip(typed, columns, strict=True) if column.key]
        named = [f"{expression} AS {alias}" for expression, alias in zip(typed, aliases, strict=True)]
        fields = {
            "table": self.table(version),
            "columns": ", ".join(quoted(column.name) for column in columns),
            "extracted": ", ".join(extracted),
            "texts": ", ".join(texts),
            "problem": self._problem(values, columns),
            "aliases": ", ".join(aliases),
            "values": ", ".join(named),
            "distinct": ", ".join(key_expressions),
            "keys": ", ".join(quoted(key) for key in self.target.key_columns),
        }
        assignments = ", ".join(
            f"{quoted(column.name)} = EXCLUDED.{quoted(column.name)}" for column in columns if not column.key
        )
        conflict_action = f"DO UPDATE SET {assignments}" if assignments else "DO NOTHING"  # only key columns
        return projection_query("sql_target_upsert_payloads").format(**fields, conflict_action=conflict_action)

    def _converted(self, value: _ExtractedValue, column: SqlColumn) -> str:
        """The column's value in its type: the jsonb found at its path as is, or that JSON value's text (a
        string unquoted) cast to the type."""
        column_type = _checked_type(self.target.column_type(column.name))
        if column_type == "jsonb":
            return value.jsonb
        if column_type == "text":
            return value.text
        return f"{value.text}::{column_type}"

    def _problem(self, values: list[_ExtractedValue], columns: tuple[SqlColumn, ...]) -> str:
        """Why an event cannot be applied (the first reason found), or NULL: a key without a value, or a
        value that does not convert to its column's type (``cast_problem``)."""
        checks = []
        for value, column in zip(values, columns, strict=True):
            name = column.name
            if COLUMN_NAME_PATTERN.fullmatch(name) is None:  # validated already; never a quote in the text
                raise ProjectionTargetError(f"invalid SQL projection target: column name {name!r}")
            if column.key:
                checks.append(f"CASE WHEN {value.text} IS NULL THEN 'key column {name} has no value' END")
        for value, column in zip(values, columns, strict=True):
            column_type = _checked_type(self.target.column_type(column.name))
            if column_type in ("text", "jsonb"):
                continue
            checks.append(f"'column {column.name} ({column_type}): ' || {cast_problem(value.text, column_type)}")
        checks.extend(self._index_size_checks(values, columns))
        return f"COALESCE({', '.join(checks)})"

    def _index_size_checks(self, values: list[_ExtractedValue], columns: tuple[SqlColumn, ...]) -> list[str]:
        """For the primary key and each declared index, the reason when this upsert's values for its columns
        are longer than an index entry holds (their text's bytes, which is what an entry stores, give or take
        a few bytes per value)."""
        text_by_name = {column.name: value.text for value, column in zip(values, columns, strict=True)}
        checks = []
        for index_columns in (self.target.key_columns, *(index.columns for index in self.target.indexes)):
            measured = [
                name
                for name in index_columns
                if name in text_by_name and self.target.column_type(name) in VARIABLE_LENGTH_TYPES
            ]
            if not measured:
                continue
            length = " + ".join(f"coalesce(octet_length({text_by_name[name]}), 0)" for name in measured)
            checks.append(
                f"CASE WHEN {length} > {MAXIMUM_INDEXED_BYTES} THEN 'the values of index ({', '.join(index_columns)})"
                f" are ' || ({length}) || ' bytes long, more than an index entry holds ({MAXIMUM_INDEXED_BYTES})' END"
            )
        return checks


def json_path_parameters(upsert: SqlUpsert) -> list[str]:
    """Each column's path as a strict SQL/JSON path, ``$.order.lines[0]`` → ``strict $."order"."lines"[0]``
    (strict: no automatic unwrapping of arrays, so a path means exactly what it says)."""
    return [
        "strict $" + "".join(f"[{step}]" if isinstance(step, int) else f'."{step}"' for step in column.steps)
        for column in upsert.columns
    ]
