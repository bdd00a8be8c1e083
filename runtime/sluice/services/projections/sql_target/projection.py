"""``sql_projection``: a Projection that maintains a declarative SQL target (the operator's Projection
kind with ``target.sql``), with no code: per event type, an upsert whose values are bound from the
event's payload by JSON path.

It needs same-database mode (a postgresql:// store): each batch's upserts commit with the checkpoint.
Consecutive events of one event type go to the database as one statement over arrays (``unnest``), one
row per key: the run's last event for a key, which is what applying them in turn would leave. An event it
cannot apply (its payload is not JSON, a key has no value, a value does not convert to its column's type)
is dead-lettered with the reason (``ProjectionContext.dead_letter``) and the projection goes on. A version
whose table has other column types or another primary key than the target declares is rebuilt blue/green
(``on_check_version``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sluice.core.errors import ProjectionTargetError
from sluice.core.events import JSON_CONTENT_TYPE, RecordedEvent
from sluice.services.projections.context import ProjectionContext
from sluice.services.projections.options import ProjectionOptions
from sluice.services.projections.projection import Projection
from sluice.services.projections.queries import projection_query
from sluice.services.projections.sql_target.definition import SqlTarget, SqlUpsert, parse_sql_target
from sluice.services.projections.sql_target.json_text import jsonb_unreadable
from sluice.services.projections.sql_target.statements import SqlTargetStatements, json_path_parameters

if TYPE_CHECKING:
    from sluice.store.sql_connection import SqlConnection


async def _write_payloads(
    context: ProjectionContext,
    statements: SqlTargetStatements,
    upsert: SqlUpsert | None,
    events: list[RecordedEvent],
    payloads: list[str],
) -> None:
    """One statement for a run of consecutive events of one upsert: PostgreSQL extracts and converts the
    columns from the payloads and keeps each key's last event; the events it could not apply (a key without
    a value, a value that does not convert to its column's type) come back with the reason and are
    dead-lettered."""
    if upsert is None or not payloads:
        return
    rows = await context.require_connection().fetch(
        statements.upsert_payloads(upsert, context.version), payloads, *json_path_parameters(upsert)
    )
    for row in rows:
        context.dead_letter(events[row["position"] - 1], f"upsert of {upsert.event_type}: {row['problem']}")


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
        run_upsert: SqlUpsert | None = None
        run_events: list[RecordedEvent] = []
        run_payloads: list[str] = []
        for event in events:
            upserts = upserts_by_type.get(event.event_type, ())
            if not upserts:
                continue
            payload = _readable_payload(event, context)
            if payload is None:
                continue
            for upsert in upserts:
                if upsert is not run_upsert:
                    await _write_payloads(context, statements, run_upsert, run_events, run_payloads)
                    run_upsert, run_events, run_payloads = upsert, [], []
                run_events.append(event)
                run_payloads.append(payload)
        await _write_payloads(context, statements, run_upsert, run_events, run_payloads)

    @projection.on_start
    async def provision(context: ProjectionContext) -> None:
        connection = context.require_connection()
        await _check_view(connection, parsed)
        await connection.execute(statements.create_schema())
        await connection.execute(statements.create_table(context.version))
        for statement in statements.add_columns(context.version) + statements.create_indexes(context.version):
            await connection.execute(statement)
        await _point_view(connection, statements, context.version)

    @projection.on_check_version
    async def check(context: ProjectionContext) -> str | None:
        """A version whose table has other column types or another primary key than the target declares is
        rebuilt (blue/green)."""
        rows = await context.require_connection().fetch(
            projection_query("sql_target_column_types"), statements.table(context.version)
        )
        mismatches = statements.type_mismatches(
            {row["name"]: row["type"] for row in rows}, {row["name"] for row in rows if row["key"]}
        )
        return "; ".join(mismatches) or None

    @projection.on_prepare_version
    async def prepare(context: ProjectionContext) -> None:
        connection = context.require_connection()
        await connection.execute(statements.create_schema())
        await connection.execute(statements.drop_table(context.version))
        await connection.execute(statements.create_table(context.version))
        for statement in statements.create_indexes(context.version):
            await connection.execute(statement)

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


def _readable_payload(event: RecordedEvent, context: ProjectionContext) -> str | None:
    """The event's payload as JSON text PostgreSQL's ``jsonb`` reads, or None after dead-lettering it."""
    if event.content_type != JSON_CONTENT_TYPE:
        context.dead_letter(event, f"its payload is not JSON (content type {event.content_type})")
        return None
    payload = event.payload.decode()
    problem = jsonb_unreadable(payload)
    if problem is not None:
        context.dead_letter(event, f"PostgreSQL cannot read its payload as JSON: {problem}")
        return None
    return payload


async def _check_view(connection: SqlConnection, target: SqlTarget) -> None:
    """The target's name must be free or Sluice's view: never replace someone's table."""
    kind = await connection.fetchval(projection_query("sql_target_relation_kind"), target.schema, target.table)
    if kind not in (None, "v"):
        raise ProjectionTargetError(
            f"{target.schema}.{target.table} exists and is not a view: Sluice keeps a view of that name on the "
            "active version's table (<table>__v<N>); drop or rename the existing relation"
        )


async def _point_view(connection: SqlConnection, statements: SqlTargetStatements, version: int) -> None:
    """Point the target's view at ``version``: replaced in place when its columns allow it (so views that
    users built on it survive), else dropped and created again (one statement: see sql_target.sql)."""
    await connection.execute(statements.point_view(version))
