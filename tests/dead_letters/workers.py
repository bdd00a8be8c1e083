"""Helpers of the dead-letter tests: run a ConsumerWorker in the test's event loop, wait for a
condition, and a handler whose failures the test decides."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from sluice import ConsumedEvent, ConsumerGroupOptions, EventStore
from sluice.services.retries import RetryPolicy
from sluice.services.workers.consumer import ConsumerSettings, ConsumerWorker
from sluice.services.workers.redriven import RedrivenEvent

FAST_RETRIES = RetryPolicy(max_attempts=3, delay=0.01, max_delay=0.02)


def worker_settings(stream_name: str, group_id: str, **changes: object) -> ConsumerSettings:
    base = ConsumerSettings(
        stream_name=stream_name,
        group_id=group_id,
        consumer_id=f"{group_id}-worker",
        options=ConsumerGroupOptions(batch_size=10, heartbeat_interval=timedelta(seconds=1)),
        retry=FAST_RETRIES,
        redrive_poll_interval=0.05,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@asynccontextmanager
async def running_worker(
    store: EventStore, settings: ConsumerSettings, handler: Callable[[ConsumedEvent, int], Awaitable[None]]
) -> AsyncIterator[ConsumerWorker]:
    """A worker running while the block runs; stopped cleanly (and checked) afterwards."""
    worker = ConsumerWorker(store, settings, handler)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=15)


async def wait_until(condition: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@dataclasses.dataclass
class ScriptedHandler:
    """Records every delivery attempt and every success (event data, redriven or not); fails the
    events ``refuse`` picks (it may be changed while the worker runs)."""

    refuse: Callable[[ConsumedEvent], bool]
    attempts: list[tuple[object, int]] = dataclasses.field(default_factory=list)
    succeeded: list[tuple[object, bool]] = dataclasses.field(default_factory=list)

    async def __call__(self, event: ConsumedEvent, attempt: int) -> None:
        self.attempts.append((event.data, attempt))
        if self.refuse(event):
            raise RuntimeError(f"refusing {event.data!r}")
        self.succeeded.append((event.data, isinstance(event, RedrivenEvent)))
