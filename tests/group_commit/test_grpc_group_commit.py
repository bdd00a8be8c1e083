"""The gRPC Append call with group commit (on by default in ``build_grpc_server`` and ``sluice serve``):
concurrent calls without an expectation share transactions, each with its own offsets, while a call
that sets ``expected_offset`` or an expected state other than ANY goes alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sluice import EventData, EventStore, ExpectedOffset
from sluice.client import SluiceClient
from sluice.rpc.server import build_grpc_server
from sluice.services.group_commit import AppendBatcher
from tests.group_commit.helpers import batch_sizes, private_metrics, read


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[SluiceClient]:
    batcher = AppendBatcher(store, metrics=private_metrics())
    server = build_grpc_server(store, address="127.0.0.1:0", batcher=batcher)
    await server.start()
    try:
        async with await SluiceClient.connect(f"127.0.0.1:{server.port}") as opened:
            yield opened
    finally:
        await server.stop(grace_seconds=1)
        await batcher.close()


async def test_concurrent_calls_share_transactions_and_each_gets_its_offsets(
    client: SluiceClient, store: EventStore
) -> None:
    results = await asyncio.gather(*(client.append("orders", EventData("Placed", {"n": n})) for n in range(30)))
    assert sorted(result.offsets[0] for result in results) == list(range(30))
    stored = await read(store, "orders")
    assert sorted(event.data["n"] for event in stored) == list(range(30))
    assert len(batch_sizes(stored)) < 30, f"calls shared transactions: {batch_sizes(stored)}"


async def test_a_call_with_an_expectation_goes_alone(client: SluiceClient, store: EventStore) -> None:
    await client.append("orders", EventData("Placed", {"n": 0}), expected_offset=ExpectedOffset.NO_STREAM)
    await client.append("orders", EventData("Placed", {"n": 1}), expected_offset=0)
    await client.append("orders", EventData("Placed", {"n": 2}), expected_offset=ExpectedOffset.STREAM_EXISTS)
    await asyncio.gather(*(client.append("orders", EventData("Placed", {"n": n})) for n in range(3, 13)))
    sizes = batch_sizes(await read(store, "orders"))
    assert sizes[:3] == [1, 1, 1]
    assert len(sizes) < 13, f"the calls without an expectation shared transactions: {sizes}"
