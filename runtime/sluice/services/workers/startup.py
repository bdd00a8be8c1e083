"""Connecting a worker to a database that may not answer yet (it is starting, restarting, or not
reachable from a pod that started first): retry with backoff, log each failure, until it answers or
the worker is asked to stop. Only failures that waiting cannot fix end the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sluice.services.consumers.transient import RetryBackoff, is_transient
from sluice.store import EventStore

logger = logging.getLogger(__name__)


async def connect_when_available(
    connect: Callable[[], Awaitable[EventStore]],
    stopping: asyncio.Event,
    *,
    on_failure: Callable[[BaseException], None],
) -> EventStore | None:
    """The store once ``connect`` succeeds; None if ``stopping`` is set first. ``on_failure`` hears
    every transient failure (the health endpoint reports it); any other failure is raised."""
    backoff = RetryBackoff()
    while not stopping.is_set():
        try:
            return await connect()
        except Exception as error:
            if not is_transient(error):
                raise
            delay = backoff.next_delay()
            on_failure(error)
            logger.warning("cannot connect to the database (retrying in %.1f s): %s", delay, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)
    return None
