"""Fixtures of the gRPC tests: a server in another process, an in-process server whose servicers
the test can inspect, and clients of either."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import sluice
from sluice.client import SluiceClient
from sluice.rpc.server import SluiceGrpcServer, build_grpc_server
from sluice.store import EventStore
from tests.grpc_api.server_process import ServerProcess


@pytest.fixture
def server_process(postgres_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(postgres_dsn, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def remote_client(server_process: ServerProcess) -> AsyncIterator[SluiceClient]:
    async with await SluiceClient.connect(server_process.target) as client:
        yield client


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    async with await sluice.connect(postgres_dsn, poll_interval=timedelta(milliseconds=50)) as opened:
        yield opened


@pytest.fixture
async def local_server(store: EventStore) -> AsyncIterator[SluiceGrpcServer]:
    server = build_grpc_server(store, address="127.0.0.1:0")
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace_seconds=1)


@pytest.fixture
async def local_client(local_server: SluiceGrpcServer) -> AsyncIterator[SluiceClient]:
    async with await SluiceClient.connect(f"127.0.0.1:{local_server.port}") as client:
        yield client
