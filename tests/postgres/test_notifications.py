"""The notification channel (LISTEN/NOTIFY wake-ups): no notification is dropped quietly.

Idle subscriptions trust the channel while it listens (they re-read only every
``listening_poll_interval``, 30 s by default), so a name whose NOTIFY failed, or that was appended
while the channel was down, must be sent once it is back; and a connection blinking right after an
append's commit must not cost the event its prompt delivery. Everything is a real PostgreSQL; two
cases replace the connection's ``execute`` for one call (a broken protocol state and a failed send
cannot be made on cue by a real server).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

import sluice
from sluice import EventData
from sluice.core.signals import AppendSignals
from sluice.storage.postgres.notifications import NotificationChannel
from tests.subscriptions.wakeups import (
    POLL_INTERVAL,
    RefusedConnections,
    Subscriber,
    channel_of,
    eventually,
    refused_connections,  # noqa: F401  (the fixture)
    terminate_listener,
)

pytestmark = pytest.mark.postgres

CHANNEL = "sluice_test_wakeups"
DELIVERY_BOUND = 3.0
"""Far below the 30 s safety interval the subscribers here rely on otherwise."""


class _FailsOnExecute:
    """Stands for the channel's connection: its next execute fails with ``error``; afterwards (if it
    survives) it is the real connection again."""

    def __init__(self, connection: asyncpg.Connection, error: Exception) -> None:
        self.connection = connection
        self.error: Exception | None = error

    async def execute(self, *args: Any) -> str:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        result: str = await self.connection.execute(*args)
        return result

    def is_closed(self) -> bool:
        return bool(self.connection.is_closed())

    def terminate(self) -> None:
        self.connection.terminate()

    async def close(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's signature)
        """What the channel's stop() calls. Without it stop()'s close failed quietly (it suppresses
        errors) and left the real connection open until the garbage collector reported it, in whichever
        test was running then (a ResourceWarning, an error under warnings-as-errors)."""
        await self.connection.close(timeout=timeout)


def _listening(dsn: str) -> tuple[NotificationChannel, AppendSignals]:
    signals = AppendSignals()
    return NotificationChannel(dsn=dsn, channel=CHANNEL, signals=signals), signals


async def test_a_broken_connection_is_replaced_and_notifications_go_on(postgres_dsn: str) -> None:
    sender, _ = _listening(postgres_dsn)
    receiver, heard = _listening(postgres_dsn)
    await sender.start()
    await receiver.start()
    try:
        broken = sender._connection
        assert broken is not None
        error = asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
        sender._connection = _FailsOnExecute(broken, error)  # type: ignore[assignment]
        before = heard.ticket("before")
        sender.appended("before")
        await eventually(lambda: sender.reconnects >= 1, what="reconnecting")
        assert all(not task.done() for task in sender._tasks), "both loops still run"
        await eventually(before.is_set, what="the failed name sent again after the reconnection")
        after = heard.ticket("after")
        sender.appended("after")
        await eventually(after.is_set, what="later notifications")
    finally:
        await sender.stop()  # raises nothing
        await receiver.stop()
    assert broken.is_closed()


async def test_a_failed_notify_is_sent_again(postgres_dsn: str) -> None:
    sender, _ = _listening(postgres_dsn)
    receiver, heard = _listening(postgres_dsn)
    await sender.start()
    await receiver.start()
    try:
        connection = sender._connection
        assert connection is not None
        sender._connection = _FailsOnExecute(connection, OSError("connection reset"))  # type: ignore[assignment]
        ticket = heard.ticket("orders")
        sender.appended("orders")
        await eventually(ticket.is_set, DELIVERY_BOUND, "the notification sent again")
        assert sender.reconnects == 0, "the connection survived: sent again on it"
        assert sender.pending == frozenset()
    finally:
        await sender.stop()
        await receiver.stop()
    assert connection.is_closed(), "stop() left the channel's connection open"


async def test_a_channel_ignores_its_own_notifications(postgres_dsn: str) -> None:
    """Local readers are woken by the append itself; the echo of its NOTIFY would wake them twice."""
    sender, signals = _listening(postgres_dsn)
    receiver, heard = _listening(postgres_dsn)
    await sender.start()
    await receiver.start()
    try:
        own, other = signals.ticket("orders"), heard.ticket("orders")
        sender.appended("orders")
        await eventually(other.is_set, what="the other channel hearing it")
        await asyncio.sleep(0.1)
        assert not own.is_set()
    finally:
        await sender.stop()
        await receiver.stop()


@pytest.mark.parametrize("append_first", [True, False])
async def test_a_listener_blinking_right_after_a_commit_delays_nothing(
    postgres_admin_dsn: str, postgres_dsn: str, append_first: bool
) -> None:
    """The writer's notification connection is terminated right after (or right before) its append
    commits, before or while its NOTIFY goes out: either the NOTIFY went out, or it failed and stays
    pending until the writer reconnects. A subscriber in another store (trusting notifications, no
    polling for 30 s) gets the event promptly either way, five times over."""
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    writer = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    await writer.append("orders", EventData("Placed", {"n": 0}))
    subscriber = Subscriber(reader, "orders")
    try:
        await eventually(lambda: subscriber.offsets() == [0], what="catching up")
        for number in range(1, 6):
            await eventually(lambda n=number: channel_of(writer).reconnects == n - 1, what="the writer's channel back")  # type: ignore[misc]
            await eventually(lambda: channel_of(writer).connected, what="the writer's channel listening")
            if append_first:
                await writer.append("orders", EventData("Placed", {"n": number}))
                await terminate_listener(postgres_admin_dsn, writer)
            else:
                blink = asyncio.create_task(terminate_listener(postgres_admin_dsn, writer))
                await writer.append("orders", EventData("Placed", {"n": number}))
                await blink
            await eventually(
                lambda n=number: subscriber.offsets() == list(range(n + 1)),  # type: ignore[misc]
                DELIVERY_BOUND,
                f"delivery of event {number}",
            )
        assert channel_of(reader).reconnects == 0
    finally:
        await subscriber.close()
        await writer.close()
        await reader.close()


async def test_a_subscriber_whose_listener_blinks_misses_nothing(postgres_admin_dsn: str, postgres_dsn: str) -> None:
    """The subscriber's own notification connection is terminated while another store appends:
    a NOTIFY it missed is made up for by the reconnection, which wakes every reader."""
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    writer = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    await writer.append("orders", EventData("Placed", {"n": 0}))
    subscriber = Subscriber(reader, "orders")
    try:
        await eventually(lambda: subscriber.offsets() == [0], what="catching up")
        for number in range(1, 6):
            await eventually(lambda n=number: channel_of(reader).reconnects == n - 1, what="the reader's channel back")  # type: ignore[misc]
            await eventually(lambda: channel_of(reader).connected, what="the reader's channel listening")
            blink = asyncio.create_task(terminate_listener(postgres_admin_dsn, reader))
            await writer.append("orders", EventData("Placed", {"n": number}))
            await blink
            await eventually(
                lambda n=number: subscriber.offsets() == list(range(n + 1)),  # type: ignore[misc]
                DELIVERY_BOUND,
                f"delivery of event {number}",
            )
    finally:
        await subscriber.close()
        await writer.close()
        await reader.close()


async def test_appends_made_while_the_channel_is_down_are_notified_once_it_is_back(
    postgres_admin_dsn: str,
    postgres_dsn: str,
    refused_connections: RefusedConnections,  # noqa: F811  (the fixture imported above)
) -> None:
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    writer = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    await writer.append("orders", EventData("Placed", {"n": 0}))
    subscriber = Subscriber(reader, "orders")
    try:
        await eventually(lambda: subscriber.offsets() == [0], what="catching up")
        await refused_connections.refuse()
        await terminate_listener(postgres_admin_dsn, writer)
        await eventually(lambda: not channel_of(writer).connected, what="the writer noticing")
        await writer.append("orders", EventData("Placed", {"n": 1}))  # its pool's session is still open
        assert channel_of(writer).pending == frozenset({"orders"})
        await asyncio.sleep(0.5)
        assert subscriber.offsets() == [0], "the reader trusts its channel: nothing told it yet"
        await refused_connections.allow()
        await eventually(lambda: subscriber.offsets() == [0, 1], DELIVERY_BOUND, "the pending notification sent")
        assert channel_of(writer).pending == frozenset()
    finally:
        await subscriber.close()
        await writer.close()
        await reader.close()


async def test_closing_a_store_sends_its_pending_notifications(postgres_dsn: str) -> None:
    """A one-shot producer (append, then close at once) still wakes subscribers elsewhere."""
    reader = await sluice.connect(postgres_dsn, poll_interval=POLL_INTERVAL)
    subscriber = Subscriber(reader, "orders")
    try:
        for number in range(3):
            async with await sluice.connect(postgres_dsn) as writer:
                await writer.append("orders", EventData("Placed", {"n": number}))
            await eventually(
                lambda n=number: subscriber.offsets() == list(range(n + 1)),  # type: ignore[misc]
                DELIVERY_BOUND,
                f"delivery of event {number}",
            )
    finally:
        await subscriber.close()
        await reader.close()


async def test_appends_within_the_coalescing_window_share_one_notification(postgres_dsn: str) -> None:
    """The first append after a quiet spell is sent at once; the ones after it, within the window, wait
    for its end and go in one NOTIFY. A long window (1 s) makes the order visible under load."""
    window = 1.0
    signals = AppendSignals()
    sender = NotificationChannel(dsn=postgres_dsn, channel=CHANNEL, signals=signals, coalesce_seconds=window)
    receiver, heard = _listening(postgres_dsn)
    await sender.start()
    await receiver.start()
    try:
        first = heard.ticket("first")
        started = asyncio.get_running_loop().time()
        sender.appended("first")
        await eventually(first.is_set, window, "the first notification, sent at once")
        first_heard_after = asyncio.get_running_loop().time() - started
        second, third = heard.ticket("second"), heard.ticket("third")
        sender.appended("second")
        sender.appended("third")
        await asyncio.sleep(window / 4)
        assert sender.pending == frozenset({"second", "third"}), "held until the window ends"
        assert not second.is_set()
        assert sender.notifications_sent == 1
        await eventually(lambda: second.is_set() and third.is_set(), DELIVERY_BOUND, "the held names sent")
        both_heard_after = asyncio.get_running_loop().time() - started
        assert sender.notifications_sent == 2, "three appends, two notifications"
        assert both_heard_after >= window, f"sent {both_heard_after:.2f} s after the first, within its window"
        assert first_heard_after < window
        await asyncio.sleep(window * 1.2)  # a quiet spell longer than the window
        fourth = heard.ticket("fourth")
        quiet_started = asyncio.get_running_loop().time()
        sender.appended("fourth")
        await eventually(fourth.is_set, window, "a notification after a quiet spell, sent at once")
        assert asyncio.get_running_loop().time() - quiet_started < window
    finally:
        await sender.stop()
        await receiver.stop()
