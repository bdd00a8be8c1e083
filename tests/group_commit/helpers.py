"""Helpers of the group-commit tests: read a partition back, count the transactions that wrote it,
and read the batcher's metrics from a private registry."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from sluice import EventStore, RecordedEvent
from sluice.services.group_commit import GroupCommitMetrics


async def read(store: EventStore, stream: str, partition: int = 0) -> list[RecordedEvent]:
    return [event async for event in store.read_stream(stream, partition=partition)]


def batch_sizes(events: list[RecordedEvent]) -> list[int]:
    """How many of ``events`` each writing transaction stored (one store.append is one transaction),
    in the order the transactions wrote them."""
    sizes: collections.Counter[int] = collections.Counter(event.global_position.transaction for event in events)
    return [sizes[transaction] for transaction in sorted(sizes)]


def private_metrics() -> GroupCommitMetrics:
    return GroupCommitMetrics(CollectorRegistry(auto_describe=True))


def sample(metrics: GroupCommitMetrics, name: str, stream: str) -> float:
    value = metrics.registry.get_sample_value(name, {"stream": stream})
    return 0.0 if value is None else value


async def eventually(check: Callable[[], bool], seconds: float = 10, interval: float = 0.005) -> None:
    """Wait until ``check()`` holds (the batcher signals nothing a test could wait on)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
