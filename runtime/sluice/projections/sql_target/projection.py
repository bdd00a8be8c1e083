"""``sql_projection``: a Projection that maintains a declarative SQL target (the operator's Projection
kind with ``target.sql``), with no code: per event type, an upsert whose values are bound from the
event's payload by JSON path.

It needs same-database mode (a postgresql:// store): each batch's upserts commit with the checkpoint.
Consecutive events of one event type go to the database as one statement over arrays (``unnest``), one
row per key: the run's last event for a key, which is what applying them in turn would leave.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
import pydantic_core

from sluice.errors import ProjectionTargetError
from sluice.events import JSON_CONTENT_TYPE, RecordedEvent
from sluice.projections.context import ProjectionContext
from sluice.projections.options import ProjectionOptions
from sluice.projections.projection import Projection
from sluice.projections.queries import projection_query
from sluice.projections.sql_target.definition import SqlTarget, SqlUpsert, parse_sql_target
from sluice.projections.sql_target.json_paths import MISSING, evaluate
from sluice.projections.sql_target.statements import SqlTargetStatements

if TYPE_CHECKING:
    from sluice.projections.context import DatabaseConnection

logger = logging.getLogger(__name__)


def key_text(value: Any) -> str | None:
    """A key column's text: a JSON string as is, another scalar or a structure as JSON; None for null."""
    if value is None or value is MISSING:
        return None
    if isinstance(value, str):
        return value
    return pydantic_core.to_json(value).decode()


def column_json(value: Any) -> str | None:
    """A jsonb column's parameter: the value as JSON text; None (SQL NULL) when the path is missing."""
    if value is MISSING:
        return None
    return pydantic_core.to_json(value).decode()


def upsert_parameters(upsert: SqlUpsert, event: RecordedEvent) -> list[str | None] | None:
    """The bound values of one event's upsert, in column order; None when the event cannot be applied
    (not a JSON payload, or a key column without a value)."""
    if event.content_type != JSON_CONTENT_TYPE:
        return None
    data = event.data
    parameters: list[str | None] = []
    for column in upsert.columns:
        value = evaluate(column.steps, data)
        if column.key:
            text = key_text(value)
            if text is None:
                return None
            parameters.append(text)
        else:
            parameters.append(column_json(value))
    return parameters


async def _write_run(
    connection: DatabaseConnection,
    statements: SqlTargetStatements,
    upsert: SqlUpsert | None,
    rows: Mapping[tuple[str | None, ...], list[str | None]],
    version: int,
) -> None:
    """One statement for a run of consecutive events of one upsert (one row per key, the last one)."""
    if upsert is None or not rows:
        return
    columns = [list(column_values) for column_values in zip(*rows.values(), strict=True)]
    await connection.execute(statements.upsert_rows(upsert, version), *columns)


def sql_projection(
    name: str,
    *,
    sources: Sequence[str],
    target: SqlTarget | str | Mapping[str, Any],
    options: ProjectionOptions | None = None,
) -> Projection:
    """A Projection that keeps ``target`` (a SqlTarget, or its manifest as JSON text or object) up to date."""
    parsed = target if isinstance(target, SqlTarget) else parse_sql_target(target)
    statements = SqlTargetStatements(parsed)
    upserts_by_type: dict[str, list[SqlUpsert]] = {}
    for upsert in parsed.upserts:
        upserts_by_type.setdefault(upsert.event_type, []).append(upsert)
    projection = Projection(name, sources=sources, options=options)

    @projection.on_batch
    async def apply(events: Sequence[RecordedEvent], context: ProjectionContext) -> None:
        connection = context.require_connection()
        run_upsert: SqlUpsert | None = None
        run_rows: dict[tuple[str | None, ...], list[str | None]] = {}
        for event in events:
            for upsert in upserts_by_type.get(event.event_type, ()):
                parameters = upsert_parameters(upsert, event)
                if parameters is None:
                    logger.warning(
                        "projection %s: skipped %s/%d/%d (%s): not JSON, or a key column has no value",
                        name,
                        event.stream_name,
                        event.partition,
                        event.offset,
                        event.event_type,
                    )
                    continue
                if upsert is not run_upsert:
                    await _write_run(connection, statements, run_upsert, run_rows, context.version)
                    run_upsert, run_rows = upsert, {}
                key = tuple(value for value, column in zip(parameters, upsert.columns, strict=True) if column.key)
                run_rows.pop(key, None)  # a later event of the run for the same key wins, as applied in turn
                run_rows[key] = parameters
        await _write_run(connection, statements, run_upsert, run_rows, context.version)

    @projection.on_start
    async def provision(context: ProjectionContext) -> None:
        connection = context.require_connection()
        await _check_view(connection, parsed)
        await connection.execute(statements.create_schema())
        await connection.execute(statements.create_table(context.version))
        for statement in statements.add_columns(context.version):
            await connection.execute(statement)
        await _point_view(connection, statements, context.version)

    @projection.on_prepare_version
    async def prepare(context: ProjectionContext) -> None:
        connection = context.require_connection()
        await connection.execute(statements.create_schema())
        await connection.execute(statements.drop_table(context.version))
        await connection.execute(statements.create_table(context.version))

    @projection.on_activate_version
    async def activate(context: ProjectionContext) -> None:
        await _point_view(context.require_connection(), statements, context.version)

    @projection.on_retire_version
    async def retire(context: ProjectionContext) -> None:
        await context.require_connection().execute(statements.drop_table(context.version))

    @projection.on_reset
    async def reset(context: ProjectionContext) -> None:
        await context.require_connection().execute(statements.truncate(context.version))

    return projection


async def _check_view(connection: DatabaseConnection, target: SqlTarget) -> None:
    """The target's name must be free or Sluice's view: never replace someone's table."""
    kind = await connection.fetchval(projection_query("sql_target_relation_kind"), target.schema, target.table)
    if kind not in (None, "v"):
        raise ProjectionTargetError(
            f"{target.schema}.{target.table} exists and is not a view: Sluice keeps a view of that name on the "
            "active version's table (<table>__v<N>); drop or rename the existing relation"
        )


async def _point_view(connection: DatabaseConnection, statements: SqlTargetStatements, version: int) -> None:
    """Point the target's view at ``version``: replaced in place when its columns allow it (so views that
    users built on it survive), else dropped and created again."""
    try:
        async with connection.transaction():  # a savepoint: the failed attempt leaves the transaction usable
            await connection.execute(statements.replace_view(version))
    except asyncpg.InvalidTableDefinitionError:
        await connection.execute(statements.recreate_view(version))
