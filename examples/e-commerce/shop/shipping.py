"""Saga step ``ship``: one shipment per order (a re-run finds it), announced with OrderShipped."""

from __future__ import annotations

from shop.database import postgres, query
from shop.events import FULFILMENT, OrderShipped, event
from sluice.services.sagas import StepExecution


async def ship(execution: StepExecution) -> None:
    store = postgres(execution.store)
    order_id = execution.correlation_id
    async with store.acquire() as connection:
        await connection.execute(query("add_shipment"), order_id, f"TRACK-{order_id}", execution.idempotency_key)
        tracking_number = await connection.fetchval(query("shipment"), order_id)
    execution.context["tracking_number"] = tracking_number
    shipped = OrderShipped(order_id=order_id, tracking_number=tracking_number)
    await store.append(FULFILMENT, event(shipped, execution.event_id("shipped")), correlation_id=order_id)
