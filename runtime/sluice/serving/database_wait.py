"""Opening the gateway's store while the database may be unreachable, starting up or not migrated.

Each attempt has a time limit (a server that accepts connections and never answers must not hold the
gateway); a failed attempt is logged and retried with exponential backoff and jitter, for ever: in
Kubernetes the pod stays up and unready, and becomes ready by itself when the database does, instead of
crash-looping. Only a configuration error (a malformed URL: a ``ValueError``) ends the wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from sluice.core.errors import InvalidArgumentError, SluiceError
from sluice.store import EventStore

logger = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 15.0
ATTEMPT_TIMEOUT_SECONDS = 10.0


class DatabaseWait:
    """Opens the store with ``open_store``, retrying until it succeeds; ``reason`` says why it has not."""

    def __init__(
        self,
        open_store: Callable[[], Awaitable[EventStore]],
        *,
        first_delay: float = FIRST_DELAY_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS,
        attempt_timeout: float = ATTEMPT_TIMEOUT_SECONDS,
    ) -> None:
        self._open_store = open_store
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._attempt_timeout = attempt_timeout
        self.attempts = 0
        self.reason = "connecting to the database"

    async def open(self) -> EventStore:
        delay = self._first_delay
        while True:
            self.attempts += 1
            try:
                async with asyncio.timeout(self._attempt_timeout):
                    store = await self._open_store()
            except ValueError as error:  # a malformed URL or setting: retrying cannot help
                if isinstance(error, SluiceError):
                    raise
                raise InvalidArgumentError(f"the database URL or a setting is not valid: {error}") from error
            except TimeoutError:
                self._failed(f"the database did not answer within {self._attempt_timeout:g} s", delay)
            except Exception as error:
                self._failed(f"{type(error).__name__}: {error}", delay)
            else:
                if self.attempts > 1:
                    logger.info("the database is ready", extra={"attempts": self.attempts})
                self.reason = "connected"
                return store
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._max_delay)

    def _failed(self, why: str, delay: float) -> None:
        self.reason = f"waiting for the database (attempt {self.attempts}): {why}"
        logger.warning(
            "the database is not ready; retrying in about %.1f s: %s",
            delay,
            why,
            extra={"attempts": self.attempts},
        )
