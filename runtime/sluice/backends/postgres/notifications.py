"""LISTEN/NOTIFY as a wake-up for subscriptions, on one dedicated connection per store.

Notifications are only hints: subscriptions also poll, so a lost notification delays an event but
never loses it. Sluice does not call pg_notify inside the append transaction, because a notifying
transaction holds a cluster-wide lock through its commit (and so through its WAL flush), which
would serialize every append on the server. Instead, after an append commits, its stream name is
queued here; one task sends the queued names in a single pg_notify, so a burst of appends costs one
notification, and appends never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from sluice.backends.postgres.queries import query

logger = logging.getLogger(__name__)

NOTIFY_PAYLOAD_LIMIT = 7900
"""pg_notify payloads must stay under 8000 bytes; longer batches are split."""


class NotificationChannel:
    """Listens for, and sends, "stream appended" notifications on one channel."""

    def __init__(
        self,
        *,
        dsn: str,
        channel: str,
        on_appended: Callable[[str], None],
        on_reconnected: Callable[[], None],
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_appended = on_appended
        self._on_reconnected = on_reconnected
        self._connect_kwargs = connect_kwargs or {}
        self._connection: asyncpg.Connection | None = None
        self._pending: set[str] = set()
        self._pending_changed = asyncio.Event()
        self._lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0

    async def start(self) -> None:
        await self._connect()
        self._tasks = [
            asyncio.create_task(self._keep_connected(), name="sluice-listen"),
            asyncio.create_task(self._send_pending(), name="sluice-notify"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a hint channel never fails the store's close; its loops should not end
                logger.exception("the notification task %s had ended with an error", task.get_name())
        self._tasks = []
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close(timeout=2)
            self._connection = None

    def appended(self, stream_name: str) -> None:
        """Queue a notification that ``stream_name`` has new events (after its commit)."""
        self._pending.add(stream_name)
        self._pending_changed.set()

    async def _connect(self) -> None:
        # A notifying transaction gets a transaction id and so a commit record; waiting for its
        # WAL flush would cost every append a second fsync. A hint may be lost in a crash anyway.
        settings = {"synchronous_commit": "off", "application_name": "sluice-notifications"}
        connection = await asyncpg.connect(self._dsn, server_settings=settings, **self._connect_kwargs)
        connection.add_termination_listener(self._terminated)
        await connection.add_listener(self._channel, self._received)
        self._connection = connection

    def _terminated(self, connection: object) -> None:
        self._lost.set()

    def _received(self, connection: object, pid: int, channel: str, payload: object) -> None:
        for stream_name in str(payload).split("\n"):
            self._on_appended(stream_name)

    async def _keep_connected(self) -> None:
        delay = 0.05
        while True:
            await self._lost.wait()
            logger.warning("notification connection lost; subscriptions poll until it is back")
            self._connection = None
            while True:
                try:
                    await self._connect()
                except Exception as error:  # any failure (refused, starting up, a broken protocol state): retry
                    logger.warning("reconnecting the notification connection failed: %s", error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                break
            delay = 0.05
            self._lost.clear()
            self.reconnects += 1
            # Anything may have been appended while the connection was down: wake every reader.
            self._on_reconnected()

    async def _send_pending(self) -> None:
        while True:
            await self._pending_changed.wait()
            self._pending_changed.clear()
            names, self._pending = self._pending, set()
            connection = self._connection
            if connection is None or not names:
                continue
            try:
                for payload in _payloads(sorted(names)):
                    await connection.execute(query("notify_appended"), self._channel, payload)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                logger.info("a notification was not sent (%s); readers will find the events by polling", error)
            except asyncpg.InternalClientError as error:
                # The driver's protocol state broke (seen while PostgreSQL restarts): this connection is
                # no use any more. Drop it and let the listening loop reconnect, instead of ending this
                # task (which would stop every later notification and fail the store's close).
                logger.warning("the notification connection broke (%s); reconnecting", error)
                if self._connection is connection:
                    connection.terminate()
                    self._lost.set()


def _payloads(names: list[str]) -> list[str]:
    payloads: list[str] = []
    current: list[str] = []
    size = 0
    for name in names:
        if current and size + len(name) + 1 > NOTIFY_PAYLOAD_LIMIT:
            payloads.append("\n".join(current))
            current, size = [], 0
        current.append(name)
        size += len(name) + 1
    if current:
        payloads.append("\n".join(current))
    return payloads
