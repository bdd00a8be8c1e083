"""``python -m shop postgresql://...``: place two orders (one paid, one declined), run the shop until
both sagas finish, and print their outcome and the order summary."""

from __future__ import annotations

import asyncio
import sys

import sluice
from shop.app import running_shop
from shop.database import install
from shop.events import ORDERS, OrderPlaced
from shop.saga import saga
from shop.summary import order_summaries
from sluice.services.sagas import saga_id_for, saga_repository


async def main(dsn: str) -> None:
    async with await sluice.connect(dsn, migrate=True) as store:
        await install(store, {"book": 10})
        orders = [
            OrderPlaced(order_id="order-1", customer="ada", sku="book", quantity=2, amount_cents=3000, card="4242"),
            OrderPlaced(order_id="order-2", customer="bob", sku="book", quantity=1, amount_cents=1500, card="declined"),
        ]
        async with running_shop(store):
            for order in orders:
                await store.append(ORDERS, order, correlation_id=order.order_id)
            repository = saga_repository(store)
            for order in orders:
                while True:
                    instance = await repository.load(saga_id_for(saga.name, order.order_id))
                    if instance is not None and instance.status.finished:
                        print(f"saga {order.order_id}: {instance.status.value}")
                        break
                    await asyncio.sleep(0.2)
            while True:  # the projection catches up a moment after the sagas finish
                summaries = await order_summaries(store)
                if [row["status"] for row in summaries] == ["shipped", "cancelled"] and summaries[1]["payment"]:
                    break
                await asyncio.sleep(0.2)
        for row in summaries:
            print(row)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
