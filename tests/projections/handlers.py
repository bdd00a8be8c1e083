"""Projections loaded by ``sluice project --handler`` in the command-line tests."""

from __future__ import annotations

from collections.abc import Sequence

from sluice import RecordedEvent
from sluice.services.projections import Projection, ProjectionContext

counter = Projection("defined-in-a-module", sources=["placeholder"])


@counter.on_start
async def create_table(context: ProjectionContext) -> None:
    await context.require_connection().execute(
        "CREATE TABLE IF NOT EXISTS public.seen (event_id uuid PRIMARY KEY, n integer NOT NULL)"
    )


@counter.on("Number")
async def seen(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(
        "INSERT INTO public.seen (event_id, n) VALUES ($1, $2)", event.event_id, event.data["n"]
    )


async def count_batches(events: Sequence[RecordedEvent], context: ProjectionContext) -> None:
    """A plain batch function: one row per batch."""
    connection = context.require_connection()
    await connection.execute("CREATE TABLE IF NOT EXISTS public.batches (size integer NOT NULL)")
    await connection.execute("INSERT INTO public.batches (size) VALUES ($1)", len(events))
