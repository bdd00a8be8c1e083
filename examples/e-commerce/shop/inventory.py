"""Saga step ``reserve-inventory`` and its compensation.

Both are idempotent: one reservation per order (a re-run finds it and takes no more stock), and
releasing deletes the reservation and returns its stock in one statement, so a second release, or
the release of a reservation that never happened, changes nothing.
"""

from __future__ import annotations

from shop.database import postgres, query
from shop.events import FULFILMENT, InventoryReleased, InventoryReserved, InventoryUnavailable, event
from sluice.services.sagas import StepExecution


class OutOfStockError(Exception):
    """Not enough stock to reserve: the saga fails at its first step (whose compensation finds nothing to release)."""


async def reserve_inventory(execution: StepExecution) -> None:
    order, order_id = execution.context, execution.correlation_id
    store = postgres(execution.store)
    async with store.acquire() as connection, connection.transaction():
        available = await connection.fetchval(query("lock_stock"), order["sku"])  # serializes reservations
        existing = await connection.fetchrow(query("reservation"), order_id)
        short = existing is None and (available is None or available < order["quantity"])
        if existing is None and not short:
            await connection.execute(query("take_stock"), order["sku"], order["quantity"])
            await connection.execute(
                query("add_reservation"), order_id, order["sku"], order["quantity"], execution.idempotency_key
            )
    if short:
        unavailable = InventoryUnavailable(
            order_id=order_id, sku=order["sku"], quantity=order["quantity"], available=available or 0
        )
        await store.append(FULFILMENT, event(unavailable, execution.event_id("unavailable")), correlation_id=order_id)
        raise OutOfStockError(f"{order['sku']}: {available or 0} available, {order['quantity']} wanted")
    reserved = InventoryReserved(order_id=order_id, sku=order["sku"], quantity=order["quantity"])
    await store.append(FULFILMENT, event(reserved, execution.event_id("reserved")), correlation_id=order_id)


async def release_inventory(execution: StepExecution) -> None:
    store = postgres(execution.store)
    async with store.acquire() as connection:
        released = await connection.fetchrow(query("release_reservation"), execution.correlation_id)
    if released is None:
        return  # never reserved, or released already (the event was appended then)
    model = InventoryReleased(order_id=execution.correlation_id, sku=released["sku"], quantity=released["quantity"])
    await store.append(FULFILMENT, event(model, execution.event_id("released")), correlation_id=model.order_id)
