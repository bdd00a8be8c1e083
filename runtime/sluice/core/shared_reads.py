"""One query for many subscriptions woken at the same place.

One append to a stream with 500 idle subscribers wakes all 500 at once, each at the same offset;
reading the same page 500 times costs 500 queries and delays the last subscriber by all of them.
Subscriptions at the same place share one read instead: the first starts it, the others await it,
and each wraps the same stored rows in RecordedEvent objects of its own (decoded data is per object,
so one consumer changing what it got never shows in another's).

Sharing must not cost a wake-up. A subscription takes its ticket before it reads, so that an append
its read misses fires that ticket later. A read is therefore shared only between subscriptions that
hold the same ticket as the one that started it: the ticket was taken before the shared query ran,
and no append has fired it since, so any append the query does not see fires it afterwards and
wakes all of them (see sluice.core.signals).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence

from sluice.core.events import EventRow


class SharedReads:
    """Reads in flight, by what they read and the ticket taken before them."""

    def __init__(self) -> None:
        self._reads: dict[Hashable, asyncio.Task[Sequence[EventRow]]] = {}
        self.shared = 0
        """How many reads were answered by another subscription's query (for tests and metrics)."""

    async def read(
        self, place: Hashable, ticket: asyncio.Event, read: Callable[[], Awaitable[Sequence[EventRow]]]
    ) -> Sequence[EventRow]:
        """What ``read()`` returns, from a read of the same ``place`` already running under the same
        ``ticket`` if there is one. A waiter cancelled (its client left) does not cancel the read
        the others wait for."""
        key = (place, ticket)
        running = self._reads.get(key)
        if running is not None:
            self.shared += 1
            return await asyncio.shield(running)

        async def run() -> Sequence[EventRow]:
            return await read()

        task = asyncio.ensure_future(run())
        self._reads[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: Hashable, task: asyncio.Task[Sequence[EventRow]]) -> None:
        if self._reads.get(key) is task:
            del self._reads[key]
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have left before it failed
