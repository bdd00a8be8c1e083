"""The README's quick start, runnable: ``python examples/quickstart.py [postgresql://...]``
(default ``memory://``). A test runs it against both backends."""

import asyncio
import sys
from datetime import timedelta

from pydantic import BaseModel

import sluice


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int


class SendEmail(BaseModel):
    to: str
    template: str


async def main(url: str) -> None:
    async with await sluice.connect(url, migrate=url != "memory://") as store:
        result = await store.append(
            "orders",
            [OrderPlaced(order_id="o-1", total_cents=1250)],
            expected_offset=sluice.ExpectedOffset.NO_STREAM,
            correlation_id="request-42",
        )
        print("appended at offsets", result.offsets)

        async for event in store.read_stream("orders", from_offset=0):
            print("read", event.offset, event.event_type, event.data, event.decode())

        async for event in store.subscribe("orders", from_offset=0):  # catch up, then live
            print("subscribed", event.offset)
            break

        await store.enqueue(
            "email-queue", SendEmail(to="ada@example.com", template="welcome"), dedupe_key="welcome:ada"
        )
        message = await store.dequeue("email-queue", visibility_timeout=timedelta(minutes=5))
        if message is not None:
            print("dequeued", message.data, "attempt", message.attempt)
            await store.acknowledge("email-queue", message.receipt)  # StaleReceiptError if redelivered meanwhile


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory://"))
