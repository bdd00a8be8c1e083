"""A gRPC subscription reports ``caught_up`` on a quiet stream: by the time the last event of the
catch-up is handed out, not with the next live event (which may never come)."""

from __future__ import annotations

import asyncio

import pytest

from sluice.client import SluiceClient
from sluice.core.events import EventData
from sluice.store import EventStore

pytestmark = [pytest.mark.postgres]


async def test_caught_up_is_set_when_the_last_catch_up_event_is_handed_out(
    store: EventStore, local_client: SluiceClient
) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(10)])
    subscription = local_client.subscribe("orders")
    try:
        for expected in range(10):
            event = await asyncio.wait_for(anext(subscription), 10)
            assert event.offset == expected
            assert subscription.caught_up is (expected == 9)
    finally:
        await subscription.aclose()


async def test_a_subscription_at_the_head_of_a_quiet_stream_is_caught_up_without_events(
    store: EventStore, local_client: SluiceClient
) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(3)])
    subscription = local_client.subscribe("orders", from_offset=3)
    waiting = asyncio.ensure_future(anext(subscription))  # the application waits for the next event
    try:
        for _ in range(100):
            if subscription.caught_up:
                break
            await asyncio.sleep(0.05)
        assert subscription.caught_up
        assert not waiting.done()
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await subscription.aclose()
