"""Fixtures of the four-door bad-input test: one seeded PostgreSQL database per test (a stream with an
event, a queue with a message, an empty queue), and a snapshot of everything a bad request could change."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

import sluice
from sluice import EventData, StreamConfig, StreamType


@dataclasses.dataclass(frozen=True)
class StoreSnapshot:
    """What the seeded database holds: names, heads, queue depths and dead letters."""

    streams: tuple[tuple[str, tuple[int, ...]], ...]
    jobs_waiting: int
    jobs_in_flight: int
    dead_letters: int


async def take_snapshot(dsn: str) -> StoreSnapshot:
    async with await sluice.connect(dsn) as store:
        infos = await store.list_streams()
        depth = await store.queue_depth("jobs")
        letters = await store.dead_letters("jobs")
    return StoreSnapshot(
        streams=tuple(sorted((info.name, tuple(p.head for p in info.partition_heads)) for info in infos)),
        jobs_waiting=depth.waiting,
        jobs_in_flight=depth.in_flight,
        dead_letters=len(letters),
    )


@pytest.fixture
async def seeded_dsn(postgres_dsn: str) -> str:
    async with await sluice.connect(postgres_dsn, poll_interval=timedelta(milliseconds=50)) as store:
        await store.append("orders", EventData("Placed", {"n": 1}))
        await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
        await store.enqueue("jobs", EventData("Job", {"n": 1}))
        await store.create_stream(StreamConfig(name="idle", type=StreamType.EPHEMERAL))
    return postgres_dsn
