"""Fixtures of the adversarial tests: a store on both backends (tests/store_fixtures.py) and a gRPC server
over the memory backend with a channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest

import sluice
from sluice import EventStore
from sluice.rpc.server import build_grpc_server
from tests.store_fixtures import store, store_url

__all__ = ["grpc_channel", "memory_store", "store", "store_url"]


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
