"""Sluice's side of the peers suite: the same workload through Sluice's public API on the bench's durable embedded
PostgreSQL (fsync on), the way bench/runtime_core.py measures appends, reads and subscription latency. Two settings:
synchronous_commit on (each append's commit waits for its WAL fsync: the durable default) and off for the
database (the commit returns before the fsync, PostgreSQL flushes the WAL within a few hundred ms: the same
trade as the peers' defaults)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import asyncpg

import sluice
from bench.harness import Databases
from bench.peers import workload
from sluice import EventData, EventStore


@dataclasses.dataclass(frozen=True, slots=True)
class SluiceSetting:
    label: str
    synchronous_commit: bool


SLUICE_SETTINGS = [
    SluiceSetting("PostgreSQL synchronous_commit=on (fsync every commit)", synchronous_commit=True),
    SluiceSetting("PostgreSQL synchronous_commit=off (WAL fsync within 0.6 s)", synchronous_commit=False),
]


async def fresh_database(databases: Databases, setting: SluiceSetting) -> str:
    dsn = await databases.fresh()
    if not setting.synchronous_commit:
        database = urlsplit(dsn).path.lstrip("/")
        admin = await asyncpg.connect(databases.admin_dsn)
        try:
            await admin.execute(f"ALTER DATABASE {database} SET synchronous_commit = off")
        finally:
            await admin.close()
    return dsn


def sender(store: EventStore, stream: str) -> workload.SendBatch:
    """Appends a batch as one call (one transaction)."""

    async def send(events: list[dict[str, Any]]) -> None:
        await store.append(stream, [EventData("Tick", data) for data in events])

    return send


async def read_all(store: EventStore, stream: str, expected: int) -> int:
    """Reads the stream from the start (pages of 1,000; the data decoded by Sluice) until its end."""
    del expected  # a stream read ends at the stream's end
    return sum([int(event.data["n"]) >= 0 async for event in store.read_stream(stream)])


async def deliveries(store: EventStore, stream: str) -> AsyncGenerator[int, None]:
    async for event in store.subscribe(stream):
        yield int(event.data["n"])


class SluiceTarget:
    """Sluice under one setting: a database of its own on the bench's PostgreSQL, a writer store and (so that
    subscribers are woken by NOTIFY, not in-process) a reader store; each channel is a new stream."""

    system = "Sluice"

    def __init__(self, setting: SluiceSetting, writer: EventStore, reader: EventStore) -> None:
        self.setting = setting.label
        self.fsync_per_write = setting.synchronous_commit
        self.writer = writer
        self.reader = reader
        self.streams = 0

    async def new_channel(self) -> workload.Channel:
        self.streams += 1
        stream = f"bench-{self.streams}"
        await self.writer.create_stream(sluice.StreamConfig(name=stream))
        return workload.Channel(
            send=sender(self.writer, stream),
            read_all=functools.partial(read_all, self.reader, stream),
            deliveries=functools.partial(deliveries, self.reader, stream),
        )


async def open_targets(stack: AsyncExitStack, databases: Databases) -> list[workload.Target]:
    """A target per setting, each on a fresh database; the stores are closed by ``stack``."""
    targets: list[workload.Target] = []
    for setting in SLUICE_SETTINGS:
        dsn = await fresh_database(databases, setting)
        writer = await sluice.connect(dsn, pool_min_size=8, pool_max_size=8)
        stack.push_async_callback(writer.close)
        reader = await sluice.connect(dsn, pool_min_size=2, pool_max_size=2)
        stack.push_async_callback(reader.close)
        targets.append(SluiceTarget(setting, writer, reader))
    return targets
