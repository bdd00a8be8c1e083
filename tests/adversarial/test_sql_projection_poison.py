"""A SQL projection survives payloads PostgreSQL's ``jsonb`` cannot read: a string holding the NUL character
(the library stores it in the payload). The projection used to fail the whole batch on each run (``sluice
project`` exited 1 again and again: a crash loop that never got past the event). Now the event is skipped with a
warning, as a binary payload is, and the events around it are projected.

Data holding NaN or Infinity (which Python's JSON writes as bare constants that no JSON reader accepts) is
refused at append since then, so no projection ever sees it; the second test checks that."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import sluice
from sluice import EventData
from sluice.core.errors import InvalidArgumentError
from sluice.services.projections import ProjectionRunner, sql_projection
from sluice.storage.postgres.store import PostgresEventStore

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


@pytest.mark.parametrize("poison", [{"order_id": "b\x00"}], ids=["NUL"])
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


@pytest.mark.parametrize("not_finite", [float("nan"), float("-inf")], ids=["NaN", "-Infinity"])
async def test_non_finite_numbers_never_reach_a_projection(
    postgres_store: PostgresEventStore, not_finite: float
) -> None:
    await postgres_store.append("orders", EventData("OrderPlaced", {"order_id": "a", "total_cents": 1}))
    with pytest.raises(InvalidArgumentError, match="NaN or Infinity"):
        await postgres_store.append(
            "orders",
            [
                EventData("OrderPlaced", {"order_id": "b", "total_cents": not_finite}),
                EventData("OrderPlaced", {"order_id": "c", "total_cents": 3}),
            ],
        )
    await ProjectionRunner(
        sql_projection("totals", sources=["orders"], target=TARGET), postgres_store
    ).run_until_caught_up()
    async with postgres_store.acquire() as connection:
        rows = await connection.fetch("SELECT order_id, total FROM public.order_totals ORDER BY order_id")
    assert [tuple(row) for row in rows] == [("a", "1")]
