"""gRPC streams survive a PostgreSQL crash and restart (kill -9 of the server and its backends, then a
restart with crash recovery) on a dedicated server, never the shared one:

- the server keeps a subscription and a queue receiver open across the outage and resumes them
  from where they were;
- when the outage outlasts what the server waits, the call ends with UNAVAILABLE (``connection_lost``)
  and the client reconnects and resumes from its checkpoint: nothing lost, nothing handed out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

import sluice
from sluice.client import SluiceClient, Subscription
from sluice.core.errors import ConnectionLostError, FencedError, UnavailableError
from sluice.core.events import EventData
from sluice.core.streams import StreamConfig, StreamType
from sluice.rpc.server import build_grpc_server
from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings
from sluice.store import EventStore

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A throwaway server this test may kill (commits reach the OS before they are acknowledged)."""
    with EmbeddedPostgres(ServerSettings(crash_safe_commits=True, max_connections=50)) as server:
        yield server


@pytest.fixture
async def own_store(own_postgres: EmbeddedPostgres) -> AsyncIterator[EventStore]:
    async with await sluice.connect(
        own_postgres.dsn(), migrate=True, poll_interval=timedelta(milliseconds=50), pool_max_size=4
    ) as store:
        yield store


async def crash_and_restart(server: EmbeddedPostgres, down_seconds: float = 1.0) -> None:
    """kill -9 the database and its backends, leave it down a moment, start it again (crash recovery)."""
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(down_seconds)
    await asyncio.to_thread(server.restart)


async def append_until_stored(store: EventStore, stream: str, numbers: range) -> None:
    """Append with fixed event ids, retrying while the database comes back (a retry is idempotent)."""
    events = [EventData("Placed", {"n": n}, event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{stream}-{n}")) for n in numbers]
    for _ in range(200):
        try:
            await store.append(stream, events)
            return
        except ConnectionLostError:
            await asyncio.sleep(0.1)
    raise AssertionError("the database did not come back")


async def take(subscription: Subscription, count: int) -> list[int]:
    return [(await asyncio.wait_for(anext(subscription), 60)).data["n"] for _ in range(count)]


@pytest.mark.parametrize(
    ("outage_seconds", "client_reconnects"),
    [pytest.param(30.0, False, id="server-rides-it-out"), pytest.param(0.0, True, id="client-reconnects")],
)
async def test_a_subscription_survives_a_database_crash(
    own_postgres: EmbeddedPostgres, own_store: EventStore, outage_seconds: float, client_reconnects: bool
) -> None:
    await own_store.append("orders", [EventData("Placed", {"n": n}) for n in range(50)])
    server = build_grpc_server(own_store, address="127.0.0.1:0", database_outage_seconds=outage_seconds)
    await server.start()
    try:
        async with await SluiceClient.connect(f"127.0.0.1:{server.port}") as client:
            subscription = client.subscribe("orders", checkpoint_interval=timedelta(milliseconds=100))
            try:
                received = await take(subscription, 50)
                crashed = time.monotonic()
                await crash_and_restart(own_postgres)
                await append_until_stored(own_store, "orders", range(50, 100))
                received += await take(subscription, 50)
                print(f"subscription resumed {time.monotonic() - crashed:.1f} s after the crash")
            finally:
                await subscription.aclose()
    finally:
        await server.stop(grace_seconds=1)
    assert received == list(range(100))
    assert subscription.next_offset == 100
    assert (subscription.reconnects > 0) is client_reconnects


@pytest.mark.parametrize(
    ("outage_seconds", "client_reconnects"),
    [pytest.param(30.0, False, id="server-rides-it-out"), pytest.param(0.0, True, id="client-reconnects")],
)
async def test_a_queue_receiver_survives_a_database_crash(
    own_postgres: EmbeddedPostgres, own_store: EventStore, outage_seconds: float, client_reconnects: bool
) -> None:
    await own_store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    await own_store.enqueue_many("jobs", [EventData("Job", {"n": n}) for n in range(5)])
    server = build_grpc_server(own_store, address="127.0.0.1:0", database_outage_seconds=outage_seconds)
    await server.start()
    try:
        async with (
            await SluiceClient.connect(f"127.0.0.1:{server.port}") as client,
            await client.receive("jobs", max_in_flight=10) as messages,
        ):
            done = []
            for _ in range(5):
                message = await asyncio.wait_for(anext(messages), 30)
                await message.ack()
                done.append(message.data["n"])
            await crash_and_restart(own_postgres)
            for _ in range(200):
                try:
                    await own_store.enqueue_many(
                        "jobs",
                        [EventData("Job", {"n": n}) for n in range(5, 10)],
                        dedupe_keys=[f"job-{n}" for n in range(5, 10)],  # a retry is idempotent
                    )
                    break
                except ConnectionLostError:
                    await asyncio.sleep(0.1)
            for _ in range(5):
                message = await asyncio.wait_for(anext(messages), 60)
                await message.ack()
                done.append(message.data["n"])
            assert (messages.reconnects > 0) is client_reconnects
    finally:
        await server.stop(grace_seconds=1)
    assert sorted(done) == list(range(10))
    assert await own_store.dequeue_many("jobs", max_messages=10) == []


async def test_a_group_member_survives_a_database_crash(own_postgres: EmbeddedPostgres, own_store: EventStore) -> None:
    await own_store.append("orders", [EventData("Placed", {"n": n}) for n in range(10)])
    server = build_grpc_server(own_store, address="127.0.0.1:0", database_outage_seconds=0.0)
    await server.start()
    processed: set[int] = set()
    try:
        async with (
            await SluiceClient.connect(f"127.0.0.1:{server.port}") as client,
            await client.consume(
                "orders", group_id="billing", consumer_id="worker-1", session_timeout=timedelta(seconds=3)
            ) as events,
        ):
            while len(processed) < 10:
                event = await asyncio.wait_for(anext(events), 30)
                await event.commit()
                processed.add(event.data["n"])
            crashed = time.monotonic()
            await crash_and_restart(own_postgres)
            await append_until_stored(own_store, "orders", range(10, 20))
            while len(processed) < 20:
                event = await asyncio.wait_for(anext(events), 60)
                with contextlib.suppress(UnavailableError, FencedError):  # (a commit during the outage)
                    await event.commit()
                processed.add(event.data["n"])
            committed = (await own_store.consumer_groups().describe("orders", "billing")).partitions[0]
            while committed.committed_offset < 20:  # the last commits may have been refused: redelivered
                event = await asyncio.wait_for(anext(events), 30)
                with contextlib.suppress(UnavailableError, FencedError):
                    await event.commit()
                committed = (await own_store.consumer_groups().describe("orders", "billing")).partitions[0]
            print(
                f"group member caught up {time.monotonic() - crashed:.1f} s after the crash "
                f"({events.reconnects} reconnect(s))"
            )
    finally:
        await server.stop(grace_seconds=1)
    assert processed == set(range(20))
