"""The order-summary projection: one row per order in ``shop.order_summary``, from the orders, the
saga's fulfilment events and the payment answers. Its writes commit with its checkpoint (same-database
mode), so each event is applied once even across crashes."""

from __future__ import annotations

from typing import Any

from shop.database import postgres, query
from shop.events import FULFILMENT, ORDERS, PAYMENTS
from sluice import RecordedEvent
from sluice.services.projections import Projection, ProjectionContext
from sluice.store import EventStore

summary = Projection("order-summary", sources=[ORDERS, FULFILMENT, PAYMENTS])


@summary.on("OrderPlaced")
async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
    data = event.data
    await context.require_connection().execute(
        query("summary_placed"), data["order_id"], data["customer"], data["sku"], data["quantity"], data["amount_cents"]
    )


@summary.on("InventoryReserved")
async def reserved(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(
        query("summary_inventory"), event.data["order_id"], "reserved", "reserved"
    )


@summary.on("InventoryUnavailable")
async def unavailable(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(
        query("summary_inventory"), event.data["order_id"], "unavailable", "out of stock"
    )


@summary.on("InventoryReleased")
async def released(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(
        query("summary_inventory"), event.data["order_id"], "released", "cancelled"
    )


@summary.on("PaymentCharged")
async def charged(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(query("summary_payment"), event.data["order_id"], "charged", "paid")


@summary.on("PaymentDeclined")
async def declined(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(
        query("summary_payment"), event.data["order_id"], f"declined: {event.data['reason']}", "payment declined"
    )


@summary.on("PaymentRefunded")
async def refunded(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(query("summary_payment"), event.data["order_id"], "refunded", None)


@summary.on("OrderShipped")
async def shipped(event: RecordedEvent, context: ProjectionContext) -> None:
    await context.require_connection().execute(
        query("summary_shipped"), event.data["order_id"], event.data["tracking_number"]
    )


async def order_summaries(store: EventStore) -> list[dict[str, Any]]:
    """The read model, one dict per order, by order id."""
    async with postgres(store).acquire() as connection:
        rows = await connection.fetch(query("summaries"))
    return [dict(row) for row in rows]
