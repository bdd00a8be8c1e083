"""Persistent subscriptions over gRPC: flow control by credits keeps the server from pulling more
than the client granted when the client stops reading; commits, fencing and rebalances."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

import pytest

import sluice
from sluice.client import RemoteGroupConsumption, SluiceClient
from sluice.core.events import EventData
from sluice.rpc.server import SluiceGrpcServer
from sluice.store import EventStore

pytestmark = [pytest.mark.postgres]


async def test_a_client_that_stops_reading_stops_the_server(
    store: EventStore, local_server: SluiceGrpcServer, local_client: SluiceClient
) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(2000)])
    prefetch = 10
    consumption = await local_client.consume("orders", group_id="billing", consumer_id="slow", prefetch=prefetch)
    async with consumption:
        taken = [await anext(consumption) for _ in range(7)]  # then the application stops reading
        assert [event.offset for event in taken] == list(range(7))
        await asyncio.sleep(1.0)  # plenty of time for a server that ignores credits to push 2,000 events
        [statistics] = local_server.services.persistent_subscriptions.statistics()
        # 10 initial credits, 5 more after the client took 5 events: never more pulled than granted.
        assert statistics.credits_granted == prefetch + prefetch // 2
        assert statistics.events_pulled <= statistics.credits_granted
        assert statistics.partitions == (0,)

        # Reading again resumes the flow, in order.
        more = [await anext(consumption) for _ in range(100)]
        assert [event.offset for event in more] == list(range(7, 107))
        [statistics] = local_server.services.persistent_subscriptions.statistics()
        assert statistics.events_pulled <= statistics.credits_granted <= 107 + prefetch + prefetch // 2
        await more[-1].commit()
    assert local_server.services.persistent_subscriptions.statistics() == []
    description = await store.consumer_groups().describe("orders", "billing")
    assert description.partitions[0].committed_offset == 107
    assert description.active_members == ()


async def test_rebalances_reach_the_client_and_stale_commits_are_fenced(
    store: EventStore, local_client: SluiceClient
) -> None:
    await store.create_stream(sluice.StreamConfig(name="carts", partitions=4))
    short = timedelta(seconds=3)
    first = await local_client.consume("carts", group_id="g", consumer_id="one", session_timeout=short)
    async with first:
        await _wait_for(lambda: first.partitions == (0, 1, 2, 3))
        second = await local_client.consume("carts", group_id="g", consumer_id="two", prefetch=1, session_timeout=short)
        async with second:
            processing = _process_in_background(first)
            try:
                await _wait_for(lambda: len(first.partitions) == 2 and len(second.partitions) == 2)
                assert set(first.partitions) | set(second.partitions) == {0, 1, 2, 3}
                assert first.rebalances >= 2  # (0, 1, 2, 3), then its half
                moved = second.partitions[0]
                # A commit for a partition this member no longer owns is fenced; the call goes on.
                with pytest.raises(sluice.FencedError):
                    await first.commit({moved: 1}, epochs={moved: 0})
                await store.append("carts", [EventData("Added", {"n": n}) for n in range(3)], partition=moved)
                own = [await asyncio.wait_for(anext(second), 10) for _ in range(3)]
                assert [(event.partition, event.offset) for event in own] == [(moved, 0), (moved, 1), (moved, 2)]
                await own[-1].commit()
            finally:
                processing.cancel()
                await asyncio.gather(processing, return_exceptions=True)
    description = await store.consumer_groups().describe("carts", "g")
    assert description.partitions[moved].committed_offset == 3


async def test_events_a_client_never_committed_are_redelivered_after_a_rebalance(
    store: EventStore, local_client: SluiceClient
) -> None:
    await store.create_stream(sluice.StreamConfig(name="carts", partitions=2))
    for partition in range(2):
        await store.append("carts", [EventData("Added", {"n": n}) for n in range(5)], partition=partition)
    short = timedelta(seconds=3)
    first = await local_client.consume("carts", group_id="g", consumer_id="one", session_timeout=short)
    async with first:
        taken = [await anext(first) for _ in range(10)]  # taken, never committed
        assert len(taken) == 10
        second = await local_client.consume("carts", group_id="g", consumer_id="two", session_timeout=short)
        async with second:
            await _wait_for(lambda: len(second.partitions) == 1)
            redelivered = await asyncio.wait_for(anext(second), 8)
            assert redelivered.offset == 0


def _process_in_background(consumption: RemoteGroupConsumption) -> asyncio.Task[None]:
    """Consume and commit every event, as a well-behaved member does."""

    async def process() -> None:
        async for event in consumption:
            with contextlib.suppress(sluice.FencedError):
                await event.commit()

    return asyncio.create_task(process())


async def _wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
