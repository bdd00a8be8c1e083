"""Shutdown steps with time limits: whatever the database does (a server that keeps connections open and
never answers), ``sluice serve`` finishes stopping within its grace period plus a few seconds.

A step that runs out of time is logged and abandoned. A store whose ``close`` runs out of time has its
PostgreSQL connections terminated (closed without the goodbye a hung server would never acknowledge).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from sluice.store import EventStore

logger = logging.getLogger(__name__)


class ShutdownBudget:
    """Time shared by consecutive shutdown steps: each may take what the ones before it left."""

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def left(self) -> float:
        return max(self._deadline - time.monotonic(), 0.0)


async def within(seconds: float, step: str, awaitable: Awaitable[object]) -> bool:
    """Await ``awaitable`` for at most ``seconds``; True when it finished (an error is logged, not raised).

    It runs as its own task, so a step that holds on to cancellation (waiting in a ``finally``) is left
    behind instead of holding up the shutdown."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=max(seconds, 0.0))
    if not done:
        task.cancel()
        logger.warning("shutdown: %s did not finish within %.1f s; abandoned", step, seconds)
        return False
    if task.cancelled():
        logger.warning("shutdown: %s was cancelled", step)
        return False
    error = task.exception()
    if error is not None:
        logger.error("shutdown: %s failed", step, exc_info=error)
        return False
    return True


async def close_store(store: EventStore, seconds: float) -> None:
    """Close ``store`` within ``seconds``; past that, drop its database connections."""
    if await within(seconds, "closing the store", store.close()):
        return
    _terminate_connections(store)


def _terminate_connections(store: EventStore) -> None:
    store.backend.terminate()
    logger.warning("shutdown: the store's connections (if it has any) were terminated")
