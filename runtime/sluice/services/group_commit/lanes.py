"""A lane: the appends waiting to share one transaction, and the task that writes them.

A lane starts writing when its oldest append has waited ``linger`` or when it holds ``eager_events`` (or
``max_batch``) events, whichever comes first. At most one write per lane is in flight (writers of a partition
serialize in the database anyway); appends arriving meanwhile wait for it and go in the next batch,
which starts as soon as the write ends if its oldest append has already waited ``linger``. So batches
grow with the load, and keyed events are written in the order they were queued.

The writing task runs in an empty context: the batch belongs to no single caller, so no caller's
context variables (a correlation id, a span) leak into it.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import time
from collections.abc import Awaitable, Callable

from sluice.services.group_commit.pending import LaneKey, PendingAppend


class AppendLane:
    """The appends waiting for one (stream, partition)."""

    def __init__(
        self,
        key: LaneKey,
        *,
        linger_seconds: float,
        max_batch: int,
        eager_events: int,
        write: Callable[[LaneKey, list[PendingAppend]], Awaitable[None]],
        on_idle: Callable[[AppendLane], None],
    ) -> None:
        self.key = key
        self._linger_seconds = linger_seconds
        self._max_batch = max_batch
        self._eager_events = min(eager_events, max_batch)
        self._write = write
        self._on_idle = on_idle
        self._loop = asyncio.get_running_loop()
        self._pending: collections.deque[PendingAppend] = collections.deque()
        self._pending_events = 0
        self._timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        self._draining = False

    @property
    def idle(self) -> bool:
        return not self._pending and self._writer is None and self._timer is None

    def add(self, pending: PendingAppend) -> None:
        """Queue a caller's events; they are written within ``linger`` (or sooner, in a full batch)."""
        self._pending.append(pending)
        self._pending_events += len(pending.events)
        if self._writer is None:
            self._schedule()

    async def drain(self) -> None:
        """Write everything queued now, without waiting for the linger time, and wait until it is written."""
        self._draining = True
        if self._writer is None:
            self._schedule()
        while self._writer is not None:
            await asyncio.wait([self._writer])

    def _ready(self) -> bool:
        if self._draining or self._pending_events >= self._eager_events:
            return True
        return time.monotonic() - self._pending[0].queued_at >= self._linger_seconds

    def _schedule(self) -> None:
        """Start the writer if a batch is ready, or set the timer for when the oldest append has lingered."""
        if not self._pending:
            return
        if self._ready():
            self._start_writer()
        elif self._timer is None:
            waited = time.monotonic() - self._pending[0].queued_at
            self._timer = self._loop.call_later(max(self._linger_seconds - waited, 0.0), self._start_writer)

    def _start_writer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writer is None:
            self._writer = self._loop.create_task(
                self._write_while_ready(),
                name=f"sluice group commit: {self.key.stream_name}",
                context=contextvars.Context(),
            )

    def _take(self) -> list[PendingAppend]:
        """The next batch: queued appends in order, up to ``max_batch`` events (at least one append),
        leaving out those whose callers were cancelled while they waited."""
        batch: list[PendingAppend] = []
        events = 0
        while self._pending:
            size = len(self._pending[0].events)
            if batch and events + size > self._max_batch:
                break
            pending = self._pending.popleft()
            self._pending_events -= size
            if not pending.abandoned:
                batch.append(pending)
                events += size
        return batch

    async def _write_while_ready(self) -> None:
        batch: list[PendingAppend] = []
        try:
            while self._pending and self._ready():
                batch = self._take()
                if batch:
                    try:
                        await self._write(self.key, batch)
                    except Exception as error:  # no caller may be left waiting forever
                        for pending in batch:
                            pending.fail(error)
                batch = []
        except asyncio.CancelledError:
            # Only the event loop shutting down cancels a writer: its callers learn that their
            # appends may or may not have been written, as a cancelled store.append would tell them.
            for pending in [*batch, *self._pending]:
                pending.result.cancel()
            self._pending.clear()
            self._pending_events = 0
            raise
        finally:
            self._writer = None
            if self._pending:
                self._schedule()
            elif self._timer is None:
                self._on_idle(self)
