"""The e-commerce example (examples/e-commerce) on PostgreSQL: a paid order ends shipped, a declined
payment ends compensated with its inventory released, an order beyond the stock is refused at its
first step, and the order-summary projection shows all of them."""

from __future__ import annotations

import asyncio
import importlib
import pathlib
import sys
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import sluice
from sluice import EventStore
from sluice.services.sagas import SagaRepository, SagaStatus, saga_id_for, saga_repository
from sluice.storage.postgres.store import PostgresEventStore

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FINAL_STATUSES = ["shipped", "cancelled", "out of stock"]
"""The summary's status of each order, in the order they are placed."""
EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "e-commerce"


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    modules = {
        name: importlib.import_module(f"shop.{name}") for name in ("app", "database", "events", "saga", "summary")
    }
    yield modules
    for name in [name for name in sys.modules if name == "shop" or name.startswith("shop.")]:
        del sys.modules[name]


async def _finished(repository: SagaRepository, saga_id: uuid.UUID) -> SagaStatus:
    async with asyncio.timeout(60):
        while True:
            instance = await repository.load(saga_id)
            if instance is not None and instance.status.finished:
                return instance.status
            await asyncio.sleep(0.1)


async def _summaries_when(
    store: EventStore, shop: dict[str, ModuleType], done: Callable[[dict[str, dict[str, Any]]], bool]
) -> dict[str, dict[str, Any]]:
    """The order summaries, once ``done`` says the projection has caught up."""
    async with asyncio.timeout(60):
        while True:
            rows = {row["order_id"]: row for row in await shop["summary"].order_summaries(store)}
            if done(rows):
                return rows
            await asyncio.sleep(0.1)


async def test_orders_are_shipped_or_compensated_and_summarised(postgres_dsn: str, shop: dict[str, ModuleType]) -> None:
    events, saga = shop["events"], shop["saga"].saga
    async with await sluice.connect(postgres_dsn) as store:
        assert isinstance(store, PostgresEventStore)
        await shop["database"].install(store, {"book": 10})
        orders = {
            "paid": events.OrderPlaced(
                order_id="paid", customer="ada", sku="book", quantity=2, amount_cents=3000, card="4242"
            ),
            "declined": events.OrderPlaced(
                order_id="declined", customer="bob", sku="book", quantity=3, amount_cents=4500, card="declined"
            ),
            "too-many": events.OrderPlaced(
                order_id="too-many", customer="cy", sku="book", quantity=50, amount_cents=75000, card="4242"
            ),
        }
        repository = saga_repository(store)
        async with shop["app"].running_shop(store):
            for order in orders.values():
                await store.append(events.ORDERS, order, correlation_id=order.order_id)
            statuses = {order_id: await _finished(repository, saga_id_for(saga.name, order_id)) for order_id in orders}
            summaries = await _summaries_when(
                store,
                shop,
                lambda rows: (
                    [rows.get(order_id, {}).get("status") for order_id in orders]
                    == ["shipped", "cancelled", "out of stock"]
                    and rows["declined"]["payment"] is not None
                ),
            )

        assert statuses == {
            "paid": SagaStatus.COMPLETED,
            "declined": SagaStatus.COMPENSATED,
            "too-many": SagaStatus.COMPENSATED,
        }
        assert summaries["paid"] == {
            "order_id": "paid",
            "customer": "ada",
            "sku": "book",
            "quantity": 2,
            "amount_cents": 3000,
            "status": "shipped",
            "inventory": "reserved",
            "payment": "charged",
            "tracking_number": "TRACK-paid",
        }
        assert summaries["declined"]["inventory"] == "released"
        assert summaries["declined"]["payment"] == "declined: card declined"
        assert summaries["too-many"]["inventory"] == "unavailable"  # never reserved, so never released

        async with store.acquire() as connection:
            assert await connection.fetchval("SELECT available FROM shop.stock WHERE sku = 'book'") == 8
            assert await connection.fetch("SELECT order_id FROM shop.reservations") == [("paid",)]
            assert [tuple(row) for row in await connection.fetch("SELECT order_id, status FROM shop.charges")] == [
                ("paid", "charged")
            ]
            assert [row["order_id"] for row in await connection.fetch("SELECT order_id FROM shop.shipments")] == [
                "paid"
            ]

        declined = await repository.get(saga_id_for(saga.name, "declined"))
        steps = [(entry.kind, entry.step) for entry in declined.history]
        assert ("step_failed", "charge-payment") in steps
        assert steps[-5:] == [
            ("compensation_started", "charge-payment"),
            ("compensation_completed", "charge-payment"),
            ("compensation_started", "reserve-inventory"),
            ("compensation_completed", "reserve-inventory"),
            ("saga_compensated", None),
        ]
        too_many = await repository.get(saga_id_for(saga.name, "too-many"))
        assert too_many.instance.failure is not None
        assert "OutOfStockError" in too_many.instance.failure
