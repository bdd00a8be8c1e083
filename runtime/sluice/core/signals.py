"""In-process wake-ups for subscriptions: a reader takes a ticket, reads, and if it found nothing
new waits on that ticket. Any append fired after the ticket was taken wakes it, so a wake-up that
lands between the read and the wait is never lost.

Whether a reader must also poll depends on where appends come from. In-process appends (the memory
backend, or this process's own appends) always fire. Appends by other processes fire only through
the PostgreSQL notification channel, and only while it is connected: ``hears_every_append`` says
which, and readers pick their wait from it (``EventStore._idle_wait_seconds``: the long safety
interval while every append is heard, the poll interval otherwise). A change of that state wakes
every reader, so a reader waiting out a long safety interval starts polling at once when the
channel is lost.
"""

from __future__ import annotations

import asyncio
import contextlib

ALL_STREAMS = "*"
"""Key fired on every append, for readers of the global log."""


class AppendSignals:
    """One asyncio.Event per key, replaced each time it fires."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.hears_every_append = True
        """Whether every append that can concern a reader fires here: true in one process (the
        memory backend), and for PostgreSQL while its notification channel listens."""

    def ticket(self, key: str) -> asyncio.Event:
        """The event that the next ``fire(key)`` will set."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        return event

    def fire(self, key: str) -> None:
        """Wake every reader holding a ticket for ``key`` (and for the global log)."""
        for name in (key, ALL_STREAMS):
            event = self._events.pop(name, None)
            if event is not None:
                event.set()

    def fire_everything(self) -> None:
        """Wake every reader, for example after a lost connection may have dropped notifications."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    def set_hears_every_append(self, hears: bool) -> None:
        """Record whether appends of other processes reach these signals, and wake every reader:
        on a loss, so that each starts polling now; on a reconnection, because anything appended
        while deaf was heard by no one (and each goes back to the long wait after its read)."""
        self.hears_every_append = hears
        self.fire_everything()

    @staticmethod
    async def wait(ticket: asyncio.Event, seconds: float) -> None:
        """Wait until the ticket fires or ``seconds`` pass (the polling fallback)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await ticket.wait()
