"""Idle subscriptions trust notifications while the channel listens, and poll only while it cannot.

On a real PostgreSQL: an idle subscription makes no reads while the notification connection is up
(counted on the store's read path) and still gets another store's append at once; with the channel
lost (its connection terminated by the server, reconnection refused for a while) subscriptions poll
and still get new events, and once the channel is back they stop polling again. A control shows the
read counter does see polling (``listening_poll_interval`` equal to ``poll_interval``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import sluice
from sluice import EventData
from tests.subscriptions.wakeups import (
    POLL_INTERVAL,
    ReadCounter,
    RefusedConnections,
    Subscriber,
    channel_of,
    eventually,
    terminate_listener,
)

IDLE_SECONDS = 1.0
DELIVERY_BOUND = 2.0
"""Far below the 30 s safety interval: an event arriving within it was delivered by a wake-up."""


@pytest.mark.postgres
async def test_an_idle_subscription_reads_nothing_while_notifications_are_heard(postgres_dsn: str) -> None:
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    writer = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    await writer.append("orders", EventData("Placed", {"n": 0}))
    counter = ReadCounter(reader)
    subscriber = Subscriber(reader, "orders")
    try:
        await eventually(lambda: subscriber.offsets() == [0], what="catching up")
        # The writer's NOTIFY for that first append may reach the reader after its catch-up read and wake it
        # once more (seen once in a full run): let it be sent and heard before idling is counted.
        await eventually(lambda: channel_of(writer).pending == frozenset(), what="the first NOTIFY sent")
        await asyncio.sleep(0.2)
        reads_when_idle = counter.reads
        await asyncio.sleep(IDLE_SECONDS)
        assert counter.reads == reads_when_idle, "no read while idle (polling at 50 ms would make ~20)"
        await writer.append("orders", EventData("Placed", {"n": 1}))  # another store: heard by NOTIFY
        await eventually(lambda: subscriber.offsets() == [0, 1], DELIVERY_BOUND, "delivery by notification")
        assert counter.reads - reads_when_idle <= 2, "one wake-up, one read (or two if notified twice)"
    finally:
        await subscriber.close()
        await writer.close()
        await reader.close()


@pytest.mark.postgres
async def test_control_a_subscription_told_to_poll_reads_every_interval(postgres_dsn: str) -> None:
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL, listening_poll_interval=POLL_INTERVAL)
    await reader.append("orders", EventData("Placed", {"n": 0}))
    counter = ReadCounter(reader)
    subscriber = Subscriber(reader, "orders")
    try:
        await eventually(lambda: subscriber.offsets() == [0], what="catching up")
        reads_when_idle = counter.reads
        await asyncio.sleep(IDLE_SECONDS)
        assert counter.reads - reads_when_idle >= 5
    finally:
        await subscriber.close()
        await reader.close()


async def test_the_memory_backend_never_polls() -> None:
    store = await sluice.connect("memory://", poll_interval=POLL_INTERVAL)
    counter = ReadCounter(store)
    subscriber = Subscriber(store, "orders")
    try:
        await store.append("orders", EventData("Placed", {"n": 0}))
        await eventually(lambda: subscriber.offsets() == [0], what="delivery")
        reads_when_idle = counter.reads
        await asyncio.sleep(IDLE_SECONDS)
        assert counter.reads == reads_when_idle
    finally:
        await subscriber.close()
        await store.close()


@pytest.mark.postgres
async def test_subscriptions_poll_while_the_channel_is_lost_and_trust_it_again_once_back(
    postgres_admin_dsn: str, postgres_dsn: str, refused_connections: RefusedConnections
) -> None:
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    writer = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    await writer.append("orders", EventData("Placed", {"n": 0}))
    channel = channel_of(reader)
    counter = ReadCounter(reader)
    subscriber = Subscriber(reader, "orders")
    try:
        await eventually(lambda: subscriber.offsets() == [0], what="catching up")
        await refused_connections.refuse()  # the channel cannot come back for now
        await terminate_listener(postgres_admin_dsn, reader)
        await eventually(lambda: not channel.connected, what="noticing the lost channel")
        assert not reader.backend.signals.hears_every_append

        reads_before = counter.reads
        await writer.append("orders", EventData("Placed", {"n": 1}))  # nobody here hears its NOTIFY
        await eventually(lambda: subscriber.offsets() == [0, 1], DELIVERY_BOUND, "delivery by polling")
        await asyncio.sleep(IDLE_SECONDS)
        assert counter.reads - reads_before >= 5, "it polls while the channel is lost"
        assert not channel.connected

        await refused_connections.allow()
        await eventually(lambda: channel.connected, what="the channel coming back")
        assert channel.reconnects == 1
        await asyncio.sleep(0.2)  # the reconnection's wake-up read
        reads_when_idle = counter.reads
        await asyncio.sleep(IDLE_SECONDS)
        assert counter.reads == reads_when_idle, "no more polling once the channel is back"
        await writer.append("orders", EventData("Placed", {"n": 2}))
        await eventually(lambda: subscriber.offsets() == [0, 1, 2], DELIVERY_BOUND, "delivery by notification")
    finally:
        await subscriber.close()
        await writer.close()
        await reader.close()


@pytest.mark.postgres
async def test_a_long_wait_is_cut_short_when_the_channel_is_lost(
    postgres_admin_dsn: str, postgres_dsn: str, refused_connections: RefusedConnections
) -> None:
    """A subscription waiting out the 30 s safety interval must not sleep through an outage of
    the channel: losing it wakes every reader, which then polls."""
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL, listening_poll_interval=timedelta(hours=1))
    writer = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    await writer.create_stream(sluice.StreamConfig(name="orders"))
    subscriber = Subscriber(reader, "orders")
    try:
        await asyncio.sleep(0.3)  # waiting (for an hour at most) on an empty stream
        await refused_connections.refuse()
        await terminate_listener(postgres_admin_dsn, reader)
        await eventually(lambda: not channel_of(reader).connected, what="noticing the lost channel")
        await writer.append("orders", EventData("Placed", {"n": 0}))
        await eventually(lambda: subscriber.offsets() == [0], DELIVERY_BOUND, "delivery by polling")
    finally:
        await subscriber.close()
        await writer.close()
        await reader.close()
