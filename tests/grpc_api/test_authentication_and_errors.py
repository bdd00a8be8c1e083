"""Bearer-token authentication, the mapping of Sluice errors to gRPC status codes (with the code in
the trailing metadata), and deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

import sluice
from sluice.client import SluiceClient
from sluice.core.errors import RemoteCallError, UnauthenticatedError
from sluice.core.events import EventData, ExpectedOffset
from sluice.rpc.server import SluiceGrpcServer
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from tests.grpc_api.server_process import ServerProcess

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def authenticated_server(postgres_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(postgres_dsn, tmp_path, tokens="writer=s3cret-token,reader=other-token")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
async def test_calls_need_a_known_bearer_token(authenticated_server: ServerProcess) -> None:
    target = authenticated_server.target
    async with await SluiceClient.connect(target) as anonymous:
        with pytest.raises(UnauthenticatedError, match="missing bearer token"):
            await anonymous.append("orders", EventData("A", {}))
        with pytest.raises(UnauthenticatedError):
            [event async for event in anonymous.read("orders")]

        async def consume_one() -> None:  # refused at the open or at the first read, whichever comes first
            consumption = await anonymous.consume("orders", group_id="g", consumer_id="c")
            async with consumption:
                await anext(consumption)

        with pytest.raises(UnauthenticatedError):
            await consume_one()
    async with await SluiceClient.connect(target, token="wrong") as impostor:
        with pytest.raises(UnauthenticatedError, match="unknown bearer token"):
            await impostor.append("orders", EventData("A", {}))
    async with await SluiceClient.connect(target, token="s3cret-token") as writer:
        result = await writer.append("orders", EventData("A", {}))
        assert result.offsets == (0,)
    async with grpc.aio.insecure_channel(target) as channel:  # probes need no token
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await sluice_pb2_grpc.StreamsStub(channel).Append(sluice_pb2.AppendRequest(stream_name="orders"))
        assert raw.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert ("sluice-error-code", "unauthenticated") in tuple(raw.value.trailing_metadata() or ())


async def raw_status(call: object) -> tuple[grpc.StatusCode, str]:
    """The status code and Sluice error code of a failing raw call."""
    try:
        result = await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        codes = [value for key, value in error.trailing_metadata() or () if key == "sluice-error-code"]
        return error.code(), codes[0] if codes else ""
    raise AssertionError(f"the call succeeded: {result}")


async def test_errors_map_to_status_codes_with_the_sluice_code(
    local_server: SluiceGrpcServer, local_client: SluiceClient
) -> None:
    port = local_server.port
    await local_client.append("orders", EventData("A", {"n": 1}))
    await local_client.enqueue("jobs", EventData("Job", {}))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        streams = sluice_pb2_grpc.StreamsStub(channel)

        def append(**fields: object) -> object:
            return streams.Append(sluice_pb2.AppendRequest(**fields))  # type: ignore[arg-type]

        event = sluice_pb2.EventToWrite(event_type="A", data=b"{}")
        cases = [
            (
                append(stream_name="orders", events=[event], expected_state=1),
                "ABORTED",
                "concurrency_conflict",
            ),
            (append(stream_name="bad name!", events=[event]), "INVALID_ARGUMENT", "invalid_name"),
            (append(stream_name="orders", events=[]), "INVALID_ARGUMENT", "invalid_argument"),
            (
                append(stream_name="orders", events=[sluice_pb2.EventToWrite(event_type="A", data=b"{not json")]),
                "INVALID_ARGUMENT",
                "invalid_argument",
            ),
            (
                append(stream_name="orders", events=[sluice_pb2.EventToWrite(event_type="A", event_id="nope")]),
                "INVALID_ARGUMENT",
                "invalid_argument",
            ),
            (append(stream_name="jobs", events=[event]), "FAILED_PRECONDITION", "wrong_stream_type"),
            (
                streams.CreateStream(sluice_pb2.CreateStreamRequest(name="orders", partitions=3)),
                "ALREADY_EXISTS",
                "stream_already_exists",
            ),
        ]
        for call, status, code in cases:
            assert await raw_status(call) == (getattr(grpc.StatusCode, status), code)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            [response async for response in streams.Read(sluice_pb2.ReadRequest(stream_name="missing"))]
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert ("sluice-error-code", "stream_not_found") in tuple(missing.value.trailing_metadata() or ())

    # The client raises the library's own classes.
    with pytest.raises(sluice.ConcurrencyError, match="expected no events yet"):
        await local_client.append("orders", EventData("A", {}), expected_offset=ExpectedOffset.NO_STREAM)
    with pytest.raises(sluice.StreamNotFoundError):
        [event async for event in local_client.read("missing")]
    with pytest.raises(sluice.InvalidNameError):
        await local_client.append("bad name!", EventData("A", {}))
    subscription = local_client.subscribe("jobs", reconnect_for=None)
    with pytest.raises(sluice.StreamTypeError):
        [event async for event in subscription]
    await subscription.aclose()


async def test_deadlines_are_honoured(local_client: SluiceClient) -> None:
    await local_client.append("ticks", EventData("Tick", {}))
    # A subscription never ends by itself; one with a deadline ends with DEADLINE_EXCEEDED.
    started = asyncio.get_running_loop().time()
    call = local_client._streams.Subscribe(
        sluice_pb2.SubscribeRequest(stream_name="ticks", checkpoint_interval=Duration(nanos=50_000_000)),
        timeout=0.3,
    )
    with pytest.raises(grpc.aio.AioRpcError) as exceeded:
        [response async for response in call]
    assert exceeded.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert asyncio.get_running_loop().time() - started < 5
    # gRPC keeps deadlines in whole milliseconds: a call the server can finish in under one (a single small
    # append on a quiet machine) may beat a 1 µs deadline. 2,000 events cannot.
    with pytest.raises(RemoteCallError) as tiny:
        await local_client.append(
            "ticks", [EventData("Tick", {"n": n}) for n in range(2_000)], deadline_seconds=0.000_001
        )
    assert tiny.value.status == "DEADLINE_EXCEEDED"
    # The server is unharmed.
    assert (await local_client.append("ticks", EventData("Tick", {}), deadline_seconds=5)).offsets[0] >= 1


@pytest.mark.slow
async def test_a_refused_stream_says_unauthenticated_every_time(authenticated_server: ServerProcess) -> None:
    """A request-streaming call refused before the server reads anything raced the client's first write:
    when the refusal arrived first, grpc's asyncio client replaced it with INTERNAL "Internal error from
    Core" (grpc/grpc#36066). The server reads the first request before refusing, so the client sees
    UNAUTHENTICATED every time, whether at the open or at its first read."""
    async with await SluiceClient.connect(authenticated_server.target) as anonymous:

        async def consume_one(consumer_id: str) -> None:  # refused at the open or at the first read
            consumption = await anonymous.consume("orders", group_id="g", consumer_id=consumer_id)
            async with consumption:
                await anext(consumption)

        for attempt in range(60):
            with pytest.raises(UnauthenticatedError):
                await consume_one(f"c{attempt}")
