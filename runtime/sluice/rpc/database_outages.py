"""Riding out a database outage inside a long-lived call (a subscription, a queue receiver).

When PostgreSQL restarts, the store raises ConnectionLostError (or DatabaseBusyError while it is
starting up or overloaded). A streaming call does not end on the first such error: it waits with
backoff (0.1 s doubling to 2 s), checks that the database answers again, and resumes from where it
was. Only when the outage lasts longer than ``give_up_after_seconds`` does the call end, with
UNAVAILABLE and the ``connection_lost`` code, which clients retry (resuming from their checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sluice.core.errors import ConnectionLostError, DatabaseBusyError, SluiceError

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[SluiceError], ...] = (ConnectionLostError, DatabaseBusyError)
"""Errors a streaming call waits out: the database is away or busy, and will be back."""
FIRST_RETRY_DELAY_SECONDS = 0.1
MAX_RETRY_DELAY_SECONDS = 2.0
DEFAULT_GIVE_UP_AFTER_SECONDS = 30.0


class OutageRetry:
    """Backoff for one call while the database is away; ``recovered()`` once it answers again."""

    def __init__(self, description: str, *, give_up_after_seconds: float = DEFAULT_GIVE_UP_AFTER_SECONDS) -> None:
        self._description = description
        self._give_up_after = give_up_after_seconds
        self._failing_since: float | None = None
        self._delay = FIRST_RETRY_DELAY_SECONDS

    @property
    def failing(self) -> bool:
        return self._failing_since is not None

    def recovered(self) -> None:
        if self._failing_since is not None:
            logger.info(
                "%s: the database answers again after %.1f s", self._description, time.monotonic() - self._failing_since
            )
        self._failing_since, self._delay = None, FIRST_RETRY_DELAY_SECONDS

    async def wait(self, error: SluiceError) -> None:
        """Sleep before the next attempt; raise ConnectionLostError (UNAVAILABLE for the caller) once
        the outage has lasted longer than allowed."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            logger.warning("%s: the database is unavailable, retrying: %s", self._description, error)
        elif now - self._failing_since > self._give_up_after:
            raise ConnectionLostError(
                f"the database has been unavailable for {now - self._failing_since:.0f} s ({error}); "
                "reconnect and resume from your checkpoint"
            ) from error
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, MAX_RETRY_DELAY_SECONDS)

    async def until_reachable(self, probe: Callable[[], Awaitable[object]], error: SluiceError) -> None:
        """Wait (with backoff) until ``probe()`` succeeds, after ``error``; then mark the outage over."""
        while True:
            await self.wait(error)
            try:
                await probe()
            except TRANSIENT_ERRORS as again:
                error = again
                continue
            self.recovered()
            return
