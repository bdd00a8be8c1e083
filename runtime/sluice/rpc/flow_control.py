"""Credits: how many more events a consumer's client is ready to receive.

The client grants credits; the server takes one before it pulls each event from the store, so the
events it holds for a client (pulled, sent or in flight, not yet credited back) never exceed what
the client granted: a client that stops reading stops the server, with nothing buffered on the way.
"""

from __future__ import annotations

import asyncio

from sluice.core.errors import InvalidArgumentError

MAX_CREDITS = 100_000


class Credits:
    """A counter the sender waits on; the request reader adds to it."""

    def __init__(self, initial: int) -> None:
        self._available = 0
        self._changed = asyncio.Condition()
        self.granted = 0
        """Credits granted so far (for statistics and tests)."""
        self._grant_now(initial)

    def _grant_now(self, count: int) -> None:
        if count < 0 or self._available + count > MAX_CREDITS:
            raise InvalidArgumentError(f"credits must be >= 0 and at most {MAX_CREDITS} outstanding")
        self._available += count
        self.granted += count

    async def grant(self, count: int) -> None:
        async with self._changed:
            self._grant_now(count)
            self._changed.notify_all()

    async def take(self) -> None:
        """Wait for one credit and use it."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._available > 0)
            self._available -= 1
