"""Helpers of the subscription and notification tests: stores that count their page reads, a subscriber
that records what it receives, and control over a store's notification connection on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from sluice import EventStore, RecordedEvent
from sluice.core.events import EventRow
from sluice.storage.postgres.notifications import NotificationChannel
from sluice.storage.postgres.store import PostgresEventStore

POLL_INTERVAL = timedelta(milliseconds=50)
"""Short, so that a subscription that polls would read many times in the idle windows below."""


async def eventually(condition: Callable[[], bool], seconds: float = 10.0, what: str = "the condition") -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} did not happen within {seconds} s"
        await asyncio.sleep(0.01)


class ReadCounter:
    """Counts the page reads a store makes (the read path of subscribe), by wrapping its stream log's method."""

    def __init__(self, store: EventStore) -> None:
        self.reads = 0
        log = store.backend.log
        read_page = log.read_page

        async def counted(*arguments: Any) -> Sequence[EventRow]:
            self.reads += 1
            return await read_page(*arguments)

        log.read_page = counted  # type: ignore[method-assign,assignment]


class Subscriber:
    """A task that subscribes to one stream and keeps what it receives."""

    def __init__(self, store: EventStore, stream_name: str) -> None:
        self.events: list[RecordedEvent] = []
        self._task = asyncio.create_task(self._run(store, stream_name))

    async def _run(self, store: EventStore, stream_name: str) -> None:
        async for event in store.subscribe(stream_name):
            self.events.append(event)

    def offsets(self) -> list[int]:
        return [event.offset for event in self.events]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def channel_of(store: EventStore) -> NotificationChannel:
    assert isinstance(store, PostgresEventStore)
    channel = store.notifications
    assert channel is not None
    return channel


async def terminate_listener(admin_dsn: str, store: EventStore) -> None:
    """End the store's notification connection from the server side, as a failover or an
    administrator's pg_terminate_backend does."""
    pid = channel_of(store).server_pid
    assert pid is not None
    admin = await asyncpg.connect(admin_dsn)
    try:
        terminated = await admin.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid = $1 AND application_name = 'sluice-notifications'",
            pid,
        )
    finally:
        await admin.close()
    assert terminated, "the notification connection was found and terminated"


class RefusedConnections:
    """``ALTER DATABASE ... ALLOW_CONNECTIONS``: while refused, no new session (a reconnecting
    notification channel either) can open; sessions already open go on."""

    def __init__(self, admin_dsn: str, dsn: str) -> None:
        self._admin_dsn = admin_dsn
        self._database = urlsplit(dsn).path.lstrip("/")

    async def _allow(self, allowed: bool) -> None:
        admin = await asyncpg.connect(self._admin_dsn)
        try:
            await admin.execute(f"ALTER DATABASE {self._database} ALLOW_CONNECTIONS {str(allowed).lower()}")
        finally:
            await admin.close()

    async def refuse(self) -> None:
        await self._allow(False)

    async def allow(self) -> None:
        await self._allow(True)


@pytest.fixture
async def refused_connections(postgres_admin_dsn: str, postgres_dsn: str) -> AsyncIterator[RefusedConnections]:
    refusing = RefusedConnections(postgres_admin_dsn, postgres_dsn)
    try:
        yield refusing
    finally:
        await refusing.allow()  # the database can be dropped after the test
