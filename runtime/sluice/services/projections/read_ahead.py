"""Reading the next page of a projection's sources while the current batch commits.

A batch's commit waits for the disk (fsync); the next page does not depend on it (it is read after the
batch's last event, below the reading horizon), so the runner starts reading it before applying the
current batch. At most one page per read-model version is read ahead; one that no longer matches the
checkpoint is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib

from sluice.core.events import GlobalPosition, RecordedEvent
from sluice.services.projections.sources import SourceReader


class ReadAhead:
    """Pages read in advance, per version, with the position they were read after."""

    def __init__(self, reader: SourceReader) -> None:
        self.reader = reader
        self._pending: dict[int, tuple[GlobalPosition | None, int, asyncio.Task[list[RecordedEvent]]]] = {}

    def start(self, version: int, after: GlobalPosition | None, limit: int) -> None:
        """Begin reading ``limit`` events after ``after`` for ``version``."""
        self._discard(version)
        task = asyncio.create_task(self.reader.read(after, limit), name=f"sluice-projection-read-ahead-{version}")
        self._pending[version] = (after, limit, task)

    async def take(self, version: int, after: GlobalPosition | None, limit: int) -> list[RecordedEvent]:
        """The page after ``after``: the one read ahead if it matches, else read now."""
        pending = self._pending.pop(version, None)
        if pending is not None:
            pending_after, pending_limit, task = pending
            if pending_after == after and pending_limit == limit:
                return await task
            await _cancelled(task)
        return await self.reader.read(after, limit)

    async def cancel(self) -> None:
        """Drop every page being read ahead (on stop, error or conflict)."""
        pending, self._pending = self._pending, {}
        for _, _, task in pending.values():
            await _cancelled(task)

    def _discard(self, version: int) -> None:
        pending = self._pending.pop(version, None)
        if pending is not None:
            pending[2].cancel()


async def _cancelled(task: asyncio.Task[list[RecordedEvent]]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
