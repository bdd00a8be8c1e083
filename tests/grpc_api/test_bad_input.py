"""Bad input over gRPC ends the call with INVALID_ARGUMENT (or answers a settlement with
``invalid_argument``) and a message naming the field, never UNKNOWN, a pydantic or driver class
name, or a half-done change; an unexpected server error is INTERNAL with a generic message."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

import sluice
from sluice.client import SluiceClient
from sluice.core.events import EventData
from sluice.rpc.server import SluiceGrpcServer, build_grpc_server
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store import EventStore

pytestmark = [pytest.mark.postgres]

TOO_BIG_OFFSET = 2**63
MAX_PROTOBUF_DURATION = Duration(seconds=315_576_000_000)
LEAKED_INTERNALS = ("pydantic", "ValidationError", "errors.pydantic.dev", "asyncpg", "DataError", "Traceback")


@pytest.fixture
async def channel(local_server: SluiceGrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{local_server.port}") as opened:
        yield opened


async def refusal(call: Any) -> tuple[grpc.StatusCode, str, str]:
    """(status, sluice-error-code, message) of a call that must fail; reads a streaming call to its end."""
    try:
        if hasattr(call, "__aiter__"):
            [response async for response in call]
        else:
            await call
    except grpc.aio.AioRpcError as error:
        codes = [value for key, value in error.trailing_metadata() or () if key == "sluice-error-code"]
        return error.code(), codes[0] if codes else "", error.details() or ""
    raise AssertionError("the call succeeded")


def assert_clear(message: str, *words: str) -> None:
    for leaked in LEAKED_INTERNALS:
        assert leaked not in message, message
    for word in words:
        assert word in message, message


async def test_create_stream_refuses_bad_names_and_numbers(channel: grpc.aio.Channel, store: EventStore) -> None:
    streams = sluice_pb2_grpc.StreamsStub(channel)
    cases = [
        (sluice_pb2.CreateStreamRequest(name="bad name!"), "invalid_name", "name"),
        (sluice_pb2.CreateStreamRequest(name="wide", partitions=5000), "invalid_argument", "partitions"),
        (sluice_pb2.CreateStreamRequest(name="wide", partitions=2**32 - 1), "invalid_argument", "partitions"),
        (sluice_pb2.CreateStreamRequest(name="jobs", max_attempts=2**32 - 1), "invalid_argument", "max_attempts"),
    ]
    for request, code, field in cases:
        status, sluice_code, message = await refusal(streams.CreateStream(request))
        assert (status, sluice_code) == (grpc.StatusCode.INVALID_ARGUMENT, code), message
        assert_clear(message, field)
    assert await store.list_streams() == []


async def test_offsets_at_or_past_two_to_the_63_are_refused(channel: grpc.aio.Channel, store: EventStore) -> None:
    await store.append("orders", [EventData("Placed", {})])
    streams = sluice_pb2_grpc.StreamsStub(channel)
    event = sluice_pb2.EventToWrite(event_type="Placed", data=b"{}")
    calls = [
        (
            streams.Append(
                sluice_pb2.AppendRequest(stream_name="orders", events=[event], expected_offset=TOO_BIG_OFFSET)
            ),
            "expected_offset",
        ),
        (streams.Read(sluice_pb2.ReadRequest(stream_name="orders", from_offset=TOO_BIG_OFFSET)), "from_offset"),
        (streams.Read(sluice_pb2.ReadRequest(stream_name="orders", limit=2**64 - 1)), "limit"),
        (streams.Read(sluice_pb2.ReadRequest(stream_name="orders", partition=2**32 - 1)), "partition"),
        (streams.Subscribe(sluice_pb2.SubscribeRequest(stream_name="orders", partition=2**32 - 1)), "partition"),
        (
            streams.Append(sluice_pb2.AppendRequest(stream_name="orders", events=[event], partition=2**32 - 1)),
            "partition",
        ),
        (
            streams.Append(
                sluice_pb2.AppendRequest(
                    stream_name="orders",
                    events=[sluice_pb2.EventToWrite(event_type="Placed", data=b"{}", schema_version=2**32 - 1)],
                )
            ),
            "schema_version",
        ),
        (
            streams.Subscribe(sluice_pb2.SubscribeRequest(stream_name="orders", from_offset=TOO_BIG_OFFSET)),
            "from_offset",
        ),
        (
            streams.Subscribe(
                sluice_pb2.SubscribeRequest(stream_name="orders", checkpoint_interval=MAX_PROTOBUF_DURATION)
            ),
            "checkpoint_interval",
        ),
    ]
    for call, field in calls:
        status, code, message = await refusal(call)
        assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument"), message
        assert_clear(message, field)
    assert (await store.get_stream("orders")).partition_heads[0].head == 1


async def test_enqueue_refuses_a_long_dedupe_key_and_a_huge_delay_before_storing(
    channel: grpc.aio.Channel, local_client: SluiceClient, store: EventStore
) -> None:
    await local_client.create_stream("jobs", type=sluice.StreamType.EPHEMERAL)
    queues = sluice_pb2_grpc.QueuesStub(channel)
    message = sluice_pb2.EventToWrite(event_type="Job", data=b"{}")
    cases = [
        (sluice_pb2.EnqueueRequest(queue_name="jobs", messages=[message], dedupe_keys=["k" * 10_000]), "dedupe_keys"),
        (sluice_pb2.EnqueueRequest(queue_name="jobs", messages=[message], delay=MAX_PROTOBUF_DURATION), "delay"),
        (sluice_pb2.EnqueueRequest(queue_name="jobs", messages=[message], delay=Duration(seconds=-1)), "delay"),
    ]
    for request, field in cases:
        status, code, text = await refusal(queues.Enqueue(request))
        assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument"), text
        assert_clear(text, field)
    assert await store.dequeue_many("jobs", max_messages=10) == []


async def test_a_max_duration_visibility_timeout_is_refused_before_any_lease(
    channel: grpc.aio.Channel, local_client: SluiceClient, store: EventStore
) -> None:
    await local_client.enqueue("jobs", EventData("Job", {"n": 1}))
    queues = sluice_pb2_grpc.QueuesStub(channel)
    call = queues.Receive()
    await call.write(
        sluice_pb2.ReceiveRequest(
            open=sluice_pb2.ReceiveOpen(queue_name="jobs", visibility_timeout=MAX_PROTOBUF_DURATION)
        )
    )
    status, code, text = await refusal(call)
    assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument"), text
    assert_clear(text, "visibility_timeout")
    [message] = await store.dequeue_many("jobs", max_messages=10)  # still visible: no lease was taken
    assert message.attempt == 1


async def test_out_of_range_receipts_and_delays_are_answered_invalid_argument(
    local_client: SluiceClient, store: EventStore
) -> None:
    await local_client.enqueue("jobs", EventData("Job", {"n": 1}))
    async with await local_client.receive("jobs") as messages:
        message = await anext(messages)
        for receipt in (f"{TOO_BIG_OFFSET}.1", f"{message.message_id}.{2**31}", "9" * 5000 + ".1"):
            with pytest.raises(sluice.InvalidArgumentError, match="out of range") as refused:
                await messages.settle("ack", receipt)
            assert_clear(str(refused.value))
        with pytest.raises(sluice.InvalidArgumentError, match="delay") as huge:
            await messages.settle("nack", message.receipt, delay=timedelta(days=3_000_000))
        assert_clear(str(huge.value))
        await message.ack()  # the call went on, and the receipt is still good


async def test_an_unexpected_error_is_internal_with_a_generic_message(
    channel: grpc.aio.Channel, store: EventStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(store, "create_stream", broken)
    streams = sluice_pb2_grpc.StreamsStub(channel)
    with caplog.at_level(logging.ERROR, logger="sluice.rpc.status_codes"):
        status, code, message = await refusal(streams.CreateStream(sluice_pb2.CreateStreamRequest(name="orders")))
    assert (status, code) == (grpc.StatusCode.INTERNAL, "internal")
    assert "KeyError" not in message
    assert "secret internal detail" not in message
    assert "reference" in message
    reference = message.split("reference ")[1].split(";")[0]
    assert any(reference in record.getMessage() and record.exc_info for record in caplog.records)


class _FailingAuthenticator:
    """An authenticator whose backend fails (its API unreachable, or a bug)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def principal_of(self, authorization: str | None) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            sluice.core.errors.ConnectionLostError("token review unreachable"),
            grpc.StatusCode.UNAVAILABLE,
            "connection_lost",
        ),
        (RuntimeError("secret internal detail"), grpc.StatusCode.INTERNAL, "internal"),
    ],
)
async def test_an_authenticator_that_fails_is_never_unknown(
    store: EventStore, error: Exception, status: grpc.StatusCode, code: str
) -> None:
    server = build_grpc_server(store, address="127.0.0.1:0", tokens=_FailingAuthenticator(error))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            streams = sluice_pb2_grpc.StreamsStub(channel)
            refused = await refusal(streams.CreateStream(sluice_pb2.CreateStreamRequest(name="orders")))
    finally:
        await server.stop(grace_seconds=1)
    assert refused[:2] == (status, code)
    assert "secret internal detail" not in refused[2]
