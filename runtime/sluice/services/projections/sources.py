"""Reading a projection's sources: the global log restricted to its streams, in commit order.

Where the store's adapter has a SQL database (``store.backend.database``: PostgreSQL) it reads the sources'
events below the oldest running transaction (so a late commit is never skipped, as ``read_all``) and counts
the lag, with one query each. Other adapters filter ``read_all``. ``wait_for_appends`` sleeps until an append
or the store's poll interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice.core.events import GlobalPosition, RecordedEvent
from sluice.core.signals import ALL_STREAMS, AppendSignals

if TYPE_CHECKING:
    from sluice.store import EventStore

START = GlobalPosition(0, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class SourcesBehind:
    """Events of the sources after a position, and the age of the first of them."""

    events: int
    oldest: datetime | None

    @property
    def seconds(self) -> float:
        if self.oldest is None or self.events == 0:
            return 0.0
        return max(0.0, (datetime.now(UTC) - self.oldest).total_seconds())


class SourceReader:
    """The events of ``sources`` in global log order, from one store."""

    def __init__(self, store: EventStore, sources: Sequence[str]) -> None:
        self.store = store
        self.sources = tuple(sources)
        self._source_set = frozenset(sources)
        self._database = store.backend.database  # SQL over the sources, where the adapter has SQL

    async def read(self, after: GlobalPosition | None, limit: int) -> list[RecordedEvent]:
        """Up to ``limit`` events after ``after`` (None: from the first)."""
        if self._database is None:
            return await self._read_filtered(after, limit)
        return await self._database.read_projection_sources(self.sources, after or START, limit)

    async def behind(self, after: GlobalPosition | None) -> SourcesBehind:
        """How many events of the sources come after ``after``."""
        if self._database is None:
            events = 0
            oldest = None
            async for event in self.store.read_all(after=after):
                if event.stream_name in self._source_set:
                    events += 1
                    oldest = oldest or event.timestamp
            return SourcesBehind(events, oldest)
        events, oldest = await self._database.projection_sources_behind(self.sources, after or START)
        return SourcesBehind(events, oldest)

    async def head(self) -> GlobalPosition | None:
        """The position of the sources' last readable event (None: they have none)."""
        if self._database is None:
            last = None
            async for event in self.store.read_all():
                if event.stream_name in self._source_set:
                    last = event.global_position
            return last
        return await self._database.projection_sources_head(self.sources)

    def wake_up_ticket(self) -> asyncio.Event:
        """Take before reading: ``wait_for_appends`` with it returns at the first append after this call."""
        return self.store.backend.signals.ticket(ALL_STREAMS)  # the wake-ups subscribe_all uses

    async def wait_for_appends(self, ticket: asyncio.Event, seconds: float | None = None) -> None:
        """Sleep until an append fires ``ticket`` (a wake-up, never the delivery: other processes' appends
        arrive through NOTIFY, and polling every ``poll_interval`` covers a lost one) or the time is up."""
        wait = self.store.options.poll_interval.total_seconds() if seconds is None else seconds
        await AppendSignals.wait(ticket, wait)

    async def _read_filtered(self, after: GlobalPosition | None, limit: int) -> list[RecordedEvent]:
        page: list[RecordedEvent] = []
        cursor = after
        while len(page) < limit:
            chunk = [event async for event in self.store.read_all(after=cursor, limit=limit)]
            page.extend(event for event in chunk if event.stream_name in self._source_set)
            if len(chunk) < limit:
                break
            cursor = chunk[-1].global_position
        return page[:limit]
