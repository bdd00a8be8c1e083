"""Subscriptions across a PostgreSQL crash: a dedicated server is SIGKILLed and started again.

While it is down every notification connection is gone: subscriptions poll (and their reads fail
until it is back). After the restart, the notification channels reconnect and idle subscriptions
trust them again, so an append from another store reaches the subscriber by notification, within
a bound far below the safety interval, and the subscriber polls no more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import sluice
from sluice import EventData, EventStore, RecordedEvent
from sluice.core.errors import UnavailableError
from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings
from tests.faults.database import killable_server as killable_postgres
from tests.subscriptions.wakeups import POLL_INTERVAL, ReadCounter, channel_of, eventually

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DATABASE = "restarts"


@pytest.fixture
async def killable_server() -> AsyncIterator[EmbeddedPostgres]:
    """A server of this test's own (never the shared one: it is killed) with a migrated database."""
    async with killable_postgres(
        DATABASE, ServerSettings(crash_safe_commits=True, max_connections=40, shared_buffers="32MB")
    ) as server:
        yield server


class ResumingSubscriber:
    """Subscribes and, when the database goes away, subscribes again from the next offset (as the
    gRPC Subscribe pump does)."""

    def __init__(self, store: EventStore, stream_name: str) -> None:
        self.events: list[RecordedEvent] = []
        self._task = asyncio.create_task(self._run(store, stream_name))

    async def _run(self, store: EventStore, stream_name: str) -> None:
        while True:
            position = self.events[-1].offset + 1 if self.events else 0
            try:
                async for event in store.subscribe(stream_name, from_offset=position):
                    self.events.append(event)
            except UnavailableError:
                await asyncio.sleep(POLL_INTERVAL.total_seconds())

    def offsets(self) -> list[int]:
        return [event.offset for event in self.events]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _append_when_back(store: EventStore, number: int) -> None:
    for _ in range(200):
        try:
            await store.append("orders", EventData("Placed", {"n": number}))
        except UnavailableError:
            await asyncio.sleep(0.1)
        else:
            return
    raise AssertionError("the database did not come back")


async def test_after_a_crash_and_restart_subscriptions_trust_notifications_again(
    killable_server: EmbeddedPostgres,
) -> None:
    dsn = killable_server.dsn(DATABASE)
    reader = await sluice.connect(dsn, poll_interval=POLL_INTERVAL)
    writer = await sluice.connect(dsn, poll_interval=POLL_INTERVAL)
    await writer.append("orders", EventData("Placed", {"n": 0}))
    counter = ReadCounter(reader)
    subscriber = ResumingSubscriber(reader, "orders")
    try:
        await eventually(lambda: subscriber.offsets() == [0], what="catching up")
        await asyncio.to_thread(killable_server.kill)
        await eventually(lambda: not channel_of(reader).connected, what="the reader noticing the crash")
        await asyncio.to_thread(killable_server.restart)
        await _append_when_back(writer, 1)
        await eventually(lambda: subscriber.offsets() == [0, 1], 20, "delivery after the restart")
        await eventually(lambda: channel_of(reader).connected, 20, "the reader's channel back")
        await eventually(lambda: channel_of(writer).connected, 20, "the writer's channel back")
        await asyncio.sleep(0.3)
        reads_when_idle = counter.reads
        await asyncio.sleep(1.0)
        assert counter.reads == reads_when_idle, "no polling once the channel is back"
        await writer.append("orders", EventData("Placed", {"n": 2}))
        await eventually(lambda: subscriber.offsets() == [0, 1, 2], 2.0, "delivery by notification")
    finally:
        await subscriber.close()
        await writer.close()
        await reader.close()
