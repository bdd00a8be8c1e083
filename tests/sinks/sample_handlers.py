"""Handlers for the handler-loading tests: named by ``tests.sinks.sample_handlers:<name>`` specs."""

from __future__ import annotations

import threading

from sluice import ConsumedEvent

seen: list[tuple[str, int, str]] = []
NOT_CALLABLE = 42


async def async_handler(event: ConsumedEvent) -> None:
    seen.append(("async", event.offset, threading.current_thread().name))


def sync_handler(event: ConsumedEvent) -> None:
    seen.append(("sync", event.offset, threading.current_thread().name))


class Handlers:
    @staticmethod
    async def nested(event: ConsumedEvent) -> None:
        seen.append(("nested", event.offset, threading.current_thread().name))
