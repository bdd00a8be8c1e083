"""The sample events the local platform appends to the example's ``orders`` stream."""

from __future__ import annotations

from pydantic import BaseModel

import sluice

__all__ = ["OrderPlaced", "append_sample_orders"]

CUSTOMERS = ("ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances")
BATCH_SIZE = 100


class OrderPlaced(BaseModel):
    """An order, as the checkout service of the example would record it."""

    order_id: str
    customer_id: str
    total_cents: int
    status: str = "placed"


async def append_sample_orders(database_url: str, *, stream: str, count: int) -> None:
    """Append ``count`` OrderPlaced events, keyed by customer so that they spread over the partitions."""
    async with await sluice.connect(database_url) as store:
        for first in range(0, count, BATCH_SIZE):
            by_customer: dict[str, list[OrderPlaced]] = {}
            for number in range(first, min(first + BATCH_SIZE, count)):
                customer = CUSTOMERS[number % len(CUSTOMERS)]
                by_customer.setdefault(customer, []).append(
                    OrderPlaced(order_id=f"order-{number + 1}", customer_id=customer, total_cents=1000 + 25 * number)
                )
            for customer, orders in by_customer.items():
                await store.append(stream, orders, partition_key=customer, correlation_id="local-platform")
