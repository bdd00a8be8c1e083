"""The notification channel (LISTEN/NOTIFY wake-ups) outlives a connection whose protocol state broke.

Seen in the fault suite while PostgreSQL restarted: sending a notification raised asyncpg's
InternalClientError ("cannot switch to state 12; another operation is in progress"), which ended the
sending task for good (no wake-up was ever sent again) and then failed the store's close with the raw
driver error. A broken protocol state cannot be made on cue by a real server, so the connection's
``execute`` is replaced for one call; everything else is a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from sluice.backends.postgres.notifications import NotificationChannel

pytestmark = pytest.mark.postgres


class _BreaksOnExecute:
    """Stands for the channel's connection: its next execute fails as a broken protocol state does."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def execute(self, *args: Any) -> str:
        raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")

    def terminate(self) -> None:
        self.connection.terminate()


async def _eventually(condition: Any, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time limit"
        await asyncio.sleep(0.05)


async def test_a_broken_connection_is_replaced_and_notifications_go_on(postgres_dsn: str) -> None:
    received: list[str] = []
    channel = NotificationChannel(
        dsn=postgres_dsn, channel="sluice_test_wakeups", on_appended=received.append, on_reconnected=lambda: None
    )
    await channel.start()
    try:
        broken = channel._connection
        assert broken is not None
        channel._connection = _BreaksOnExecute(broken)  # type: ignore[assignment]
        channel.appended("before")
        await _eventually(lambda: channel.reconnects >= 1)
        assert all(not task.done() for task in channel._tasks), "both loops still run"
        channel.appended("after")
        await _eventually(lambda: "after" in received)
    finally:
        await channel.stop()  # raises nothing
    assert broken.is_closed()
