"""``RetentionWorker``: applies the stored retention policies in the background of a long-running
process (``sluice serve``, a worker pod).

Every ``tick`` it calls ``apply_policies(..., due_only=True)``: each policy then runs inside its
cleanup window, at most once per cleanup interval across every process sharing the store (the run
is claimed in storage), so running the worker in every replica is safe. Failures are logged and
retried at the next tick; the worker never stops the process it runs in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.core.errors import InvalidArgumentError, SluiceError
from sluice.services.retention.applying import apply_policies
from sluice.store.values.retention import PruneReport

if TYPE_CHECKING:
    from sluice.store import EventStore

logger = logging.getLogger(__name__)

DEFAULT_TICK = timedelta(seconds=30)
"""How often the worker looks for due policies (the policies' own interval decides how often they run)."""


class RetentionWorker:
    """``async with RetentionWorker(store):`` runs the loop while the block runs; or ``start``/``stop``."""

    def __init__(self, store: EventStore, *, tick: timedelta = DEFAULT_TICK) -> None:
        if tick <= timedelta(0):
            raise InvalidArgumentError("the retention worker's tick must be positive")
        self._store = store
        self._tick = tick
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        """Completed passes over the policies (for health checks and tests)."""
        self.last_reports: list[PruneReport] = []

    async def run_once(self) -> list[PruneReport]:
        """One pass: apply every due policy now."""
        reports = await apply_policies(self._store, due_only=True)
        self.runs += 1
        self.last_reports = reports
        return reports

    async def run(self) -> None:
        """Run passes every tick until cancelled."""
        while True:
            try:
                await self.run_once()
            except SluiceError as error:
                logger.warning("retention pass failed, retrying in %s: %s", self._tick, error)
            await asyncio.sleep(self._tick.total_seconds())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="sluice-retention-worker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> RetentionWorker:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
