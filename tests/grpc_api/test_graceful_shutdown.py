"""Graceful shutdown: streams end with UNAVAILABLE after cleaning up (a group member leaves its
group at once instead of holding its partitions until its session expires), unary calls in flight
finish, and new calls are refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from sluice.client import SluiceClient
from sluice.core.errors import RemoteCallError
from sluice.core.events import EventData
from sluice.rpc import build_grpc_server
from sluice.store import EventStore

pytestmark = [pytest.mark.postgres]


async def _read_until_the_end(iterator: AsyncIterator[object]) -> None:
    async for _ in iterator:
        pass


async def test_stop_drains_streams_and_lets_unary_calls_finish(store: EventStore, postgres_dsn: str) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(3)])
    server = build_grpc_server(store, address="127.0.0.1:0")
    await server.start()
    blocker = await asyncpg.connect(postgres_dsn)
    stopping: asyncio.Task[None] | None = None
    try:
        async with await SluiceClient.connect(f"127.0.0.1:{server.port}") as client:
            consumption = await client.consume(
                "orders", group_id="g", consumer_id="c", session_timeout=timedelta(minutes=5), reconnect_for=None
            )
            subscription = client.subscribe("orders", reconnect_for=None)
            async with consumption:
                assert (await anext(consumption)).offset == 0
                assert (await anext(subscription)).offset == 0
                description = await store.consumer_groups().describe("orders", "g")
                assert [member.consumer_id for member in description.active_members] == ["c"]

                # Hold the stream's counter row so that an append stays in flight on the server.
                transaction = blocker.transaction()
                await transaction.start()
                await blocker.execute(
                    "SELECT 1 FROM sluice.stream_partitions JOIN sluice.streams USING (stream_id) "
                    "WHERE name = 'orders' FOR UPDATE OF stream_partitions"
                )
                appending = asyncio.create_task(client.append("orders", EventData("Placed", {"n": 3})))
                await asyncio.sleep(0.5)
                stopping = asyncio.create_task(server.stop(grace_seconds=10))
                with pytest.raises(RemoteCallError) as consume_ended:
                    await _read_until_the_end(consumption)
                assert consume_ended.value.status == "UNAVAILABLE"
                with pytest.raises(RemoteCallError) as subscription_ended:
                    await _read_until_the_end(subscription)
                assert subscription_ended.value.status == "UNAVAILABLE"
                await subscription.aclose()

                assert not appending.done()
                await transaction.commit()
                assert (await appending).offsets == (3,)  # it finished: the server waited for it
                await stopping
                with pytest.raises(RemoteCallError):
                    await client.append("orders", EventData("Placed", {}), deadline_seconds=2)

        # The member left when the server drained: nobody waits out its 5-minute session.
        description = await store.consumer_groups().describe("orders", "g")
        assert description.active_members == ()
    finally:
        await blocker.close()
        if stopping is None:
            await server.stop(grace_seconds=1)
        else:
            await stopping
