"""A SQL projection survives payloads Python's JSON writes but PostgreSQL's ``jsonb`` cannot read: data
holding NaN or Infinity, or a string holding the NUL character. The library stores them; the projection
used to fail the whole batch on each run (``sluice project`` exited 1 again and again: a crash loop that
never got past the event). Now the event is skipped with a warning, as a binary payload is, and the
events around it are projected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import sluice
from sluice import EventData
from sluice.backends.postgres.store import PostgresEventStore
from sluice.projections import ProjectionRunner, sql_projection

pytestmark = pytest.mark.postgres

TARGET: dict[str, Any] = {
    "table": "order_totals",
    "keyColumns": ["order_id"],
    "upserts": [{"eventType": "OrderPlaced", "columns": {"order_id": "$.order_id", "total": "$.total_cents"}}],
}


@pytest.fixture
async def postgres_store(postgres_dsn: str) -> AsyncIterator[PostgresEventStore]:
    opened = await sluice.connect(postgres_dsn)
    assert isinstance(opened, PostgresEventStore)
    yield opened
    await opened.close()


@pytest.mark.parametrize(
    "poison",
    [
        {"order_id": "b", "total_cents": float("nan")},
        {"order_id": "b", "total_cents": float("-inf")},
        {"order_id": "b\x00"},
    ],
    ids=["NaN", "-Infinity", "NUL"],
)
async def test_unreadable_payload_is_skipped(postgres_store: PostgresEventStore, poison: dict[str, Any]) -> None:
    await postgres_store.append(
        "orders",
        [
            EventData("OrderPlaced", {"order_id": "a", "total_cents": 1}),
            EventData("OrderPlaced", poison),
            EventData("OrderPlaced", {"order_id": "c", "total_cents": 3}),
        ],
    )
    await ProjectionRunner(
        sql_projection("totals", sources=["orders"], target=TARGET), postgres_store
    ).run_until_caught_up()
    async with postgres_store.acquire() as connection:
        rows = await connection.fetch("SELECT order_id, total FROM public.order_totals ORDER BY order_id")
    assert [tuple(row) for row in rows] == [("a", "1"), ("c", "3")]
