"""The gRPC door: each call runs as its token's principal; denials are PERMISSION_DENIED with the
``permission_denied`` code (the client raises PermissionDeniedError), and nothing is stored."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest

import sluice
from sluice import EventData, EventStore, StreamType
from sluice.client import SluiceClient
from sluice.core.errors import PermissionDeniedError
from sluice.rpc.server import SluiceGrpcServer, build_grpc_server
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.security import AccessPolicy, BearerTokens
from sluice.security.authorizer import AUDIT_LOGGER_NAME
from tests.access_control.conftest import TOKENS

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def postgres_store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    async with await sluice.connect(postgres_dsn, poll_interval=timedelta(milliseconds=50)) as opened:
        yield opened


@pytest.fixture
async def server(
    postgres_store: EventStore, tokens: BearerTokens, policy: AccessPolicy
) -> AsyncIterator[SluiceGrpcServer]:
    started = build_grpc_server(postgres_store, address="127.0.0.1:0", tokens=tokens, policy=policy)
    await started.start()
    try:
        yield started
    finally:
        await started.stop(grace_seconds=1)


async def connect_as(server: SluiceGrpcServer, principal: str) -> SluiceClient:
    return await SluiceClient.connect(f"127.0.0.1:{server.port}", token=TOKENS[principal])


async def test_a_token_without_write_permission_cannot_append_over_grpc(
    server: SluiceGrpcServer, postgres_store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    await postgres_store.append("orders", EventData("OrderPlaced", {"id": 1}))
    async with await connect_as(server, "reader") as reader:
        with caplog.at_level(logging.WARNING, logger=AUDIT_LOGGER_NAME), pytest.raises(PermissionDeniedError):
            await reader.append("orders", EventData("OrderPlaced", {"id": 2}), correlation_id="grpc-request-1")
        assert [event.offset async for event in reader.read("orders")] == [0]  # and it can read
        with pytest.raises(PermissionDeniedError):
            await reader.enqueue("jobs", EventData("Job", {}))
    assert (await postgres_store.get_stream("orders")).partition_heads[0].head == 1
    denial = next(record for record in caplog.records if record.name == AUDIT_LOGGER_NAME)
    assert (denial.principal, denial.action, denial.stream, denial.correlation_id) == (  # type: ignore[attr-defined]
        "reader",
        "append",
        "orders",
        "grpc-request-1",
    )
    async with await connect_as(server, "writer") as writer:
        assert (await writer.append("orders", EventData("OrderPlaced", {"id": 3}))).offsets == (1,)
        with pytest.raises(PermissionDeniedError):
            [event async for event in writer.read("payments")]


async def first_event_consumed(client: SluiceClient) -> object:
    """Join a group and wait for an event (refused at the open or at the first read, whichever comes first)."""
    consumption = await client.consume("orders", group_id="email", consumer_id="c1")
    async with consumption:
        return await anext(aiter(consumption))


async def test_administration_and_consumption_over_grpc_follow_the_policy(
    server: SluiceGrpcServer, postgres_store: EventStore
) -> None:
    async with await connect_as(server, "writer") as writer:
        with pytest.raises(PermissionDeniedError):
            await writer.create_stream("orders-eu", partitions=2)
        with pytest.raises(PermissionDeniedError):
            await first_event_consumed(writer)
    async with await connect_as(server, "operator") as operator:
        description = await operator.create_stream("jobs", type=StreamType.EPHEMERAL)
        assert description.name == "jobs"
    assert [info.name for info in await postgres_store.list_streams()] == ["jobs"]


async def test_raw_calls_get_the_permission_denied_status_and_code(server: SluiceGrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await sluice_pb2_grpc.StreamsStub(channel).Append(
                sluice_pb2.AppendRequest(stream_name="orders"),
                metadata=(("authorization", f"Bearer {TOKENS['worker']}"),),
            )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert ("sluice-error-code", "permission_denied") in tuple(raised.value.trailing_metadata() or ())
