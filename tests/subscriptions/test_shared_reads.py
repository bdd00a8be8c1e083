"""Subscriptions woken at the same place share one read, and lose nothing by it.

The rule (sluice/core/shared_reads.py): a read is shared only between subscriptions holding the ticket
that was current when it started, so an append the shared query missed still wakes them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import sluice
from sluice import EventData, EventStore
from sluice.core.events import EventRow
from sluice.core.shared_reads import SharedReads
from tests.subscriptions.wakeups import ReadCounter, Subscriber, eventually

SUBSCRIBERS = 50


class _SlowRead:
    """A read that waits until released, and counts how often it ran."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Sequence[EventRow]:
        self.calls += 1
        await self.release.wait()
        return [(0, None, "Placed", 1, b"{}", b"{}", None, None, None)]


async def test_reads_under_the_same_ticket_share_one_query_and_its_rows() -> None:
    """Shared are the stored rows (immutable); each subscription wraps them in event objects of its
    own (test_many_subscriptions_get_every_event_in_order_from_few_reads checks that)."""
    reads, read = SharedReads(), _SlowRead()
    ticket = asyncio.Event()
    waiters = [asyncio.create_task(reads.read(("orders", 0, 0), ticket, read)) for _ in range(3)]
    await asyncio.sleep(0)
    read.release.set()
    pages = await asyncio.gather(*waiters)
    assert read.calls == 1
    assert reads.shared == 2
    assert pages[0] is pages[1] is pages[2]


async def test_a_read_started_under_an_older_ticket_is_not_joined() -> None:
    """The older ticket fired (an append) after that read started: its query may have missed the
    append, so a subscription holding the new ticket must read for itself."""
    reads, read = SharedReads(), _SlowRead()
    first = asyncio.create_task(reads.read(("orders", 0, 0), asyncio.Event(), read))
    await asyncio.sleep(0)
    second = asyncio.create_task(reads.read(("orders", 0, 0), asyncio.Event(), read))
    await asyncio.sleep(0)
    read.release.set()
    await asyncio.gather(first, second)
    assert read.calls == 2
    assert reads.shared == 0


async def test_a_subscription_that_leaves_does_not_cancel_the_read_of_the_others() -> None:
    reads, read = SharedReads(), _SlowRead()
    ticket = asyncio.Event()
    starter = asyncio.create_task(reads.read(("orders", 0, 0), ticket, read))
    await asyncio.sleep(0)
    joiner = asyncio.create_task(reads.read(("orders", 0, 0), ticket, read))
    await asyncio.sleep(0)
    starter.cancel()
    await asyncio.sleep(0)
    read.release.set()
    page = await joiner
    assert [row[0] for row in page] == [0]
    assert starter.cancelled()


async def test_many_subscriptions_get_every_event_in_order_from_few_reads(store_url: str) -> None:
    store: EventStore = await sluice.connect(store_url)
    writer: EventStore = store if store_url == "memory://" else await sluice.connect(store_url)
    await writer.create_stream(sluice.StreamConfig(name="orders"))
    counter = ReadCounter(store)
    subscribers = [Subscriber(store, "orders") for _ in range(SUBSCRIBERS)]
    try:
        await asyncio.sleep(0.2)  # all waiting at offset 0
        reads_when_idle = counter.reads
        for number in range(5):
            await writer.append("orders", [EventData("Placed", {"n": number, "i": i}) for i in range(3)])
        expected = list(range(15))
        await eventually(lambda: all(subscriber.offsets() == expected for subscriber in subscribers))
        assert counter.reads - reads_when_idle < SUBSCRIBERS, "woken together, they share reads"
        first, second = subscribers[0].events[0], subscribers[1].events[0]
        first.data["n"] = "changed by one consumer"
        assert second.data["n"] == 0, "one subscription's event objects are its own"
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        if writer is not store:
            await writer.close()
        await store.close()
