"""In-process wake-ups for subscriptions: a reader takes a ticket, reads, and if it found nothing
new waits on that ticket. Any append fired after the ticket was taken wakes it, so a wake-up that
lands between the read and the wait is never lost."""

from __future__ import annotations

import asyncio
import contextlib

ALL_STREAMS = "*"
"""Key fired on every append, for readers of the global log."""


class AppendSignals:
    """One asyncio.Event per key, replaced each time it fires."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

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

    @staticmethod
    async def wait(ticket: asyncio.Event, seconds: float) -> None:
        """Wait until the ticket fires or ``seconds`` pass (the polling fallback)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await ticket.wait()
