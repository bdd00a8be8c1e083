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

from sluice.errors import ProjectionTargetError
from sluice.events import JSON_CONTENT_TYPE, RecordedEvent
from sluice.projections.context import ProjectionContext
from sluice.projections.options import ProjectionOptions
from sluice.projections.projection import Projection
from sluice.projections.queries import projection_query
from sluice.projections.sql_target.definition import SqlTarget, SqlUpsert, parse_sql_target
from sluice.projections.sql_target.json_text import jsonb_unreadable
from sluice.projections.sql_target.statements import SqlTargetStatements, json_path_parameters

if TYPE_CHECKING:
    from sluice.projections.context import DatabaseConnection

logger = logging.getLogger(__name__)


async def _write_payloads(
    connection: DatabaseConnection,
    statements: SqlTargetStatements,
    upsert: SqlUpsert | None,
    payloads: list[str],
    version: int,
) -> None:
    """One statement for a run of consecutive events of one upsert: PostgreSQL extracts the columns from the
    payloads, skips events lacking a key and keeps each key's last event."""
    if upsert is None or not payloads:
        return
    await connection.execute(statements.upsert_payloads(upsert, version), payloads, *json_path_parameters(upsert))


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
        run_payloads: list[str] = []
        for event in events:
            for upsert in upserts_by_type.get(event.event_type, ()):
                if event.content_type != JSON_CONTENT_TYPE:
                    logger.warning(
                        "projection %s: skipped %s/%d/%d (%s): its payload is not JSON",
                        name,
                        event.stream_name,
                        event.partition,
                        event.offset,
                        event.event_type,
                    )
                    continue
                payload = event.payload.decode()
                problem = jsonb_unreadable(payload)
                if problem is not None:
                    logger.warning(
                        "projection %s: skipped %s/%d/%d (%s): PostgreSQL cannot read its payload as JSON: %s",
                        name,
                        event.stream_name,
                        event.partition,
                        event.offset,
                        event.event_type,
                        problem,
                    )
                    continue
                if upsert is not run_upsert:
                    await _write_payloads(connection, statements, run_upsert, run_payloads, context.version)
                    run_upsert, run_payloads = upsert, []
                run_payloads.append(payload)
        await _write_payloads(connection, statements, run_upsert, run_payloads, context.version)

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
