"""Fixtures of the adversarial tests: a store on both backends (tests/store_fixtures.py), a gRPC server
over the memory backend with a channel to it, and a database on a server of its own that a test may freeze."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest

import sluice
from sluice import EventStore
from sluice.rpc.server import build_grpc_server
from sluice.storage.postgres.embedded import EmbeddedPostgres
from tests.faults.database import FaultyDatabase, create_database, fault_server_settings
from tests.store_fixtures import store, store_url

__all__ = ["freezable_database", "grpc_channel", "memory_store", "store", "store_url"]


@pytest.fixture
async def memory_store() -> AsyncIterator[EventStore]:
    opened = await sluice.connect("memory://", poll_interval=timedelta(milliseconds=50))
    yield opened
    await opened.close()


@pytest.fixture
async def grpc_channel(memory_store: EventStore) -> AsyncIterator[grpc.aio.Channel]:
    server = build_grpc_server(memory_store, address="127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel
    finally:
        await server.stop(grace_seconds=1)


@pytest.fixture
async def freezable_database() -> AsyncIterator[FaultyDatabase]:
    """A migrated database on a server of its own, which the test may freeze (resumed again at the end)."""
    server = EmbeddedPostgres(fault_server_settings())
    await asyncio.to_thread(server.start)
    try:
        faulty = FaultyDatabase(server)
        await create_database(server, faulty.database)
        yield faulty
    finally:
        server.resume()  # (a no-op unless the test left it frozen)
        await asyncio.to_thread(server.stop)
