"""The SQL of a declarative target, filled into the templates of ``projections.sql``.

Only identifiers are ever placed in the text: names validated by ``definition`` and quoted by
``sluice.names.quote_identifier``; values are always bound parameters (``$1``, ``$2::jsonb``).

Storage: version N of the read model is the table ``<table>__v<N>`` (shortened with a hash of the name when
that would be too long), and ``<table>`` is a view on the active version. A blue/green rebuild builds the
next version's table beside it and replaces the view when it has caught up, in the transaction that
records the switch. Key columns are ``text`` (a JSON string as is, other values as JSON text); every other
column is ``jsonb``, holding the value found at its path.
"""

from __future__ import annotations

import functools
import hashlib

from sluice.errors import InvalidNameError, ProjectionTargetError
from sluice.names import quote_identifier
from sluice.projections.queries import projection_query
from sluice.projections.sql_target.definition import SqlTarget, SqlUpsert

MAXIMUM_QUOTED_NAME_LENGTH = 48
"""``quote_identifier`` accepts names of at most 48 characters (Sluice's schema-name rule)."""


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


class SqlTargetStatements:
    """Every statement a target needs, per read-model version."""

    def __init__(self, target: SqlTarget) -> None:
        self.target = target
        self.schema = quoted(target.schema)
        self.view = f"{self.schema}.{quoted(target.table)}"
        for column in target.column_names:
            quoted(column)

    def table(self, version: int) -> str:
        return f"{self.schema}.{quoted(version_table_name(self.target.table, version))}"

    def create_schema(self) -> str:
        return projection_query("sql_target_create_schema").format(schema=self.schema)

    def create_table(self, version: int) -> str:
        target = self.target
        columns = ", ".join(
            f"{quoted(name)} {'text NOT NULL' if name in target.key_columns else 'jsonb'}"
            for name in target.column_names
        )
        keys = ", ".join(quoted(key) for key in target.key_columns)
        return projection_query("sql_target_create_table").format(table=self.table(version), columns=columns, keys=keys)

    def add_columns(self, version: int) -> list[str]:
        """For a table created by an earlier target: its non-key columns added when missing."""
        template = projection_query("sql_target_add_column")
        return [
            template.format(table=self.table(version), column=quoted(name), type="jsonb")
            for name in self.target.column_names
            if name not in self.target.key_columns
        ]

    def replace_view(self, version: int) -> str:
        """Point the view at ``version``'s table, keeping it (and views built on it) in place."""
        return self._view_statement("sql_target_replace_view", version)

    def recreate_view(self, version: int) -> str:
        """Drop and create the view: for when the target's columns changed order."""
        return self._view_statement("sql_target_recreate_view", version)

    def _view_statement(self, name: str, version: int) -> str:
        columns = ", ".join(quoted(column) for column in self.target.column_names)
        return projection_query(name).format(view=self.view, columns=columns, table=self.table(version))

    def truncate(self, version: int) -> str:
        return projection_query("sql_target_truncate").format(table=self.table(version))

    def drop_table(self, version: int) -> str:
        return projection_query("sql_target_drop_table").format(table=self.table(version))

    @functools.cache  # noqa: B019  (one instance per target, kept for the life of the projection)
    def upsert_payloads(self, upsert: SqlUpsert, version: int) -> str:
        """The upsert for a whole run of events: ``$1`` their payloads, then each column's path as a bound
        strict SQL/JSON path (``json_path_parameters``); PostgreSQL extracts the values."""
        columns = ", ".join(quoted(column.name) for column in upsert.columns)
        expressions = []
        for number, column in enumerate(upsert.columns, 2):
            value = f"jsonb_path_query_first(batch.payload, ${number}::jsonpath, '{{}}', true)"
            expressions.append(f"({value} #>> '{{}}')" if column.key else value)
        aliases = [f"c{number}" for number in range(1, len(upsert.columns) + 1)]
        key_expressions = [
            expression for expression, column in zip(expressions, upsert.columns, strict=True) if column.key
        ]
        named = [f"{expression} AS {alias}" for expression, alias in zip(expressions, aliases, strict=True)]
        fields = {
            "table": self.table(version),
            "columns": columns,
            "aliases": ", ".join(aliases),
            "values": ", ".join(named),
            "distinct": ", ".join(key_expressions),
            "keys_present": " AND ".join(f"{expression} IS NOT NULL" for expression in key_expressions),
            "keys": ", ".join(quoted(key) for key in self.target.key_columns),
        }
        assignments = ", ".join(
            f"{quoted(column.name)} = EXCLUDED.{quoted(column.name)}" for column in upsert.columns if not column.key
        )
        if not assignments:
            return projection_query("sql_target_insert_key_payloads").format(**fields)
        return projection_query("sql_target_upsert_payloads").format(**fields, assignments=assignments)


def json_path_parameters(upsert: SqlUpsert) -> list[str]:
    """Each column's path as a strict SQL/JSON path, ``$.order.lines[0]`` → ``strict $."order"."lines"[0]``
    (strict: no automatic unwrapping of arrays, so a path means exactly what it says)."""
    return [
        "strict $" + "".join(f"[{step}]" if isinstance(step, int) else f'."{step}"' for step in column.steps)
        for column in upsert.columns
    ]
