"""Helpers of the consumer-group contract tests: fill a stream, take events from a consumption."""

from __future__ import annotations

import asyncio

from sluice import ConsumedEvent, EventData, EventStore, GroupConsumption, StreamConfig
from sluice.core.streams import DeliverySemantics


async def fill(
    store: EventStore,
    stream: str,
    count: int,
    partitions: int = 1,
    *,
    delivery: DeliverySemantics = DeliverySemantics.BROADCAST,
) -> None:
    """Create ``stream`` and append ``count`` events ``{"n": 0..count-1}``, spread round-robin."""
    await store.create_stream(StreamConfig(name=stream, partitions=partitions, delivery=delivery))
    for n in range(count):
        await store.append(stream, EventData("E", {"n": n}), partition=n % partitions)


async def take(consumption: GroupConsumption, count: int, seconds: float = 10) -> list[ConsumedEvent]:
    """The next ``count`` events of a consumption, within ``seconds``."""
    taken: list[ConsumedEvent] = []

    async def run() -> None:
        async for event in consumption:
            taken.append(event)
            if len(taken) == count:
                return

    await asyncio.wait_for(run(), seconds)
    return taken
