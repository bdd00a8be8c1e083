"""The bad inputs, each in the form every door takes it: a library call, a command line (with stdin),
a REST request and a gRPC call. A door a case does not apply to is None."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from sluice import EventData, EventStore, Receipt, StreamConfig
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc

TOO_BIG = 2**63
HUGE = timedelta(days=10**6)
MAX_PROTOBUF_DURATION = Duration(seconds=315_576_000_000)
DEPTH = 5_000


def nested(depth: int) -> list[Any]:
    """A list nested ``depth`` deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


NESTED_TEXT = "[" * DEPTH + "]" * DEPTH
ENVELOPE = json.dumps({"type": "Placed", "data": {}})


@dataclasses.dataclass(frozen=True)
class GrpcRefusal:
    """How a gRPC call ended: its status and the ``sluice-error-code`` (or a settlement's error code)."""

    status: grpc.StatusCode
    code: str
    message: str


GrpcCall = Callable[[grpc.aio.Channel], Awaitable[GrpcRefusal]]


@dataclasses.dataclass(frozen=True)
class BadInput:
    name: str
    library: Callable[[EventStore], Awaitable[object]] | None = None
    cli: tuple[list[str], str | None] | None = None
    rest: tuple[str, str, Any] | None = None
    grpc: GrpcCall | None = None


async def _refusal(call: Any) -> GrpcRefusal:
    try:
        if hasattr(call, "__aiter__"):
            [response async for response in call]
        else:
            await call
    except grpc.aio.AioRpcError as error:
        codes = [value for key, value in error.trailing_metadata() or () if key == "sluice-error-code"]
        return GrpcRefusal(error.code(), str(codes[0]) if codes else "", error.details() or "")
    return GrpcRefusal(grpc.StatusCode.OK, "", "the call succeeded")


def _unary(method: str, request: Any) -> GrpcCall:
    async def call(channel: grpc.aio.Channel) -> GrpcRefusal:
        stub: Any = sluice_pb2_grpc.QueuesStub(channel) if method == "Enqueue" else sluice_pb2_grpc.StreamsStub(channel)
        return await _refusal(getattr(stub, method)(request, timeout=10))

    return call


def _receive(*requests: sluice_pb2.ReceiveRequest) -> GrpcCall:
    """A Receive call sending ``requests``; a settlement's error counts as the call's refusal."""

    async def call(channel: grpc.aio.Channel) -> GrpcRefusal:
        finished = asyncio.Event()

        async def outgoing() -> AsyncIterator[sluice_pb2.ReceiveRequest]:
            for request in requests:
                yield request
            await finished.wait()  # half-close only once the answer is in

        stream = sluice_pb2_grpc.QueuesStub(channel).Receive(outgoing(), timeout=10)
        try:
            return await _receive_outcome(stream)
        finally:
            finished.set()
            stream.cancel()

    return call


async def _receive_outcome(stream: Any) -> GrpcRefusal:
    try:
        async for response in stream:
            if response.WhichOneof("kind") != "result":
                continue
            if not response.result.error_code:
                return GrpcRefusal(grpc.StatusCode.OK, "", "the settlement succeeded")
            status = grpc.StatusCode.INVALID_ARGUMENT
            if response.result.error_code != "invalid_argument":
                status = grpc.StatusCode.UNKNOWN
            return GrpcRefusal(status, response.result.error_code, response.result.error_message)
    except grpc.aio.AioRpcError as error:
        codes = [value for key, value in error.trailing_metadata() or () if key == "sluice-error-code"]
        return GrpcRefusal(error.code(), str(codes[0]) if codes else "", error.details() or "")
    return GrpcRefusal(grpc.StatusCode.OK, "", "the call ended without an error")


def _event(**fields: Any) -> sluice_pb2.EventToWrite:
    fields.setdefault("data", b"{}")
    return sluice_pb2.EventToWrite(event_type="Placed", content_type="application/json", **fields)


async def _read(store: EventStore, **arguments: Any) -> None:
    async for _ in store.read_stream("orders", **arguments):
        pass


CASES: tuple[BadInput, ...] = (
    BadInput(
        "expected offset 2^63",
        library=lambda s: s.append("orders", EventData("Placed", {}), expected_offset=TOO_BIG),
        cli=(["append", "orders", "--data", ENVELOPE, "--expected-offset", str(TOO_BIG)], None),
        rest=(
            "POST",
            "/api/event-streams/orders/events",
            {"events": [{"type": "A", "data": {}}], "expectedOffset": TOO_BIG},
        ),
        grpc=_unary(
            "Append", sluice_pb2.AppendRequest(stream_name="orders", events=[_event()], expected_offset=TOO_BIG)
        ),
    ),
    BadInput(
        "read from offset 2^63",
        library=lambda s: _read(s, from_offset=TOO_BIG),
        cli=(["read", "orders", "--from-offset", str(TOO_BIG)], None),
        grpc=_unary("Read", sluice_pb2.ReadRequest(stream_name="orders", from_offset=TOO_BIG)),
    ),
    BadInput(
        "event id not a UUID",
        library=lambda s: s.append("orders", EventData("Placed", {}, event_id="order-1")),  # type: ignore[arg-type]
        cli=(["append", "orders", "--data", json.dumps({"type": "A", "data": {}, "id": "order-1"})], None),
        rest=("POST", "/api/event-streams/orders/events", {"events": [{"type": "A", "data": {}, "id": "order-1"}]}),
        grpc=_unary("Append", sluice_pb2.AppendRequest(stream_name="orders", events=[_event(event_id="order-1")])),
    ),
    BadInput(
        "deeply nested JSON",
        library=lambda s: s.append("orders", EventData("Placed", nested(DEPTH))),
        cli=(["append", "orders", "--type", "Placed"], NESTED_TEXT + "\n"),
        rest=("POST", "/api/event-streams/orders/events", {"events": [{"type": "A", "data": "NESTED"}]}),
    ),
    BadInput(
        "NaN in event data",
        library=lambda s: s.append("orders", EventData("Placed", {"total": float("nan")})),
        cli=(["append", "orders", "--data", '{"type": "Placed", "data": {"total": NaN}}'], None),
        rest=("POST", "/api/event-streams/orders/events", {"events": [{"type": "A", "data": {"total": "NAN"}}]}),
        grpc=_unary(
            "Append", sluice_pb2.AppendRequest(stream_name="orders", events=[_event(data=b'{"total": Infinity}')])
        ),
    ),
    *(
        BadInput(
            f"consume {flag} {value}",
            cli=(["consume", "--stream", "orders", "--group", "g", "--sink", "http://127.0.0.1:9/", flag, value], None),
        )
        for flag, value in (("--commit-interval", "nan"), ("--session-timeout", "1e300"), ("--sink-timeout", "inf"))
    ),
    BadInput("serve --grace-seconds nan", cli=(["serve", "--grace-seconds", "nan"], None)),
    BadInput("serve --close-seconds inf", cli=(["serve", "--close-seconds", "inf"], None)),
    BadInput(
        "stream name with a space",
        library=lambda s: s.create_stream(StreamConfig(name="bad name")),
        cli=(["streams", "create", "bad name"], None),
        rest=("POST", "/api/event-streams", {"name": "bad name"}),
        grpc=_unary("CreateStream", sluice_pb2.CreateStreamRequest(name="bad name")),
    ),
    BadInput(
        "5000 partitions",
        library=lambda s: s.create_stream(StreamConfig(name="wide", partitions=5_000)),
        cli=(["streams", "create", "wide", "--partitions", "5000"], None),
        rest=("POST", "/api/event-streams", {"name": "wide", "partitions": 5_000}),
        grpc=_unary("CreateStream", sluice_pb2.CreateStreamRequest(name="wide", partitions=5_000)),
    ),
    BadInput(
        "visibility timeout too large to store",
        library=lambda s: s.dequeue("jobs", visibility_timeout=HUGE),
        cli=(["dequeue", "jobs", "--visibility-timeout", "1e12"], None),
        grpc=_receive(
            sluice_pb2.ReceiveRequest(
                open=sluice_pb2.ReceiveOpen(
                    queue_name="jobs", max_in_flight=1, visibility_timeout=MAX_PROTOBUF_DURATION
                )
            )
        ),
    ),
    BadInput(
        "delay too large to store",
        library=lambda s: s.enqueue("jobs", EventData("Job", {}), delay=HUGE),
        cli=(["enqueue", "jobs", "--data", "{}", "--delay", "1e12"], None),
        grpc=_unary(
            "Enqueue",
            sluice_pb2.EnqueueRequest(queue_name="jobs", messages=[_event()], delay=MAX_PROTOBUF_DURATION),
        ),
    ),
    BadInput(
        "dedupe key of 10,000 characters",
        library=lambda s: s.enqueue_many("jobs", [EventData("Job", {})], dedupe_keys=["k" * 10_000]),
        cli=(["enqueue", "jobs", "--data", "{}", "--dedupe-key", "k" * 10_000], None),
        grpc=_unary(
            "Enqueue", sluice_pb2.EnqueueRequest(queue_name="jobs", messages=[_event()], dedupe_keys=["k" * 10_000])
        ),
    ),
    BadInput(
        "receipt out of range",
        library=lambda s: s.acknowledge("idle", Receipt(TOO_BIG, 1)),
        grpc=_receive(
            sluice_pb2.ReceiveRequest(open=sluice_pb2.ReceiveOpen(queue_name="idle", max_in_flight=1)),
            sluice_pb2.ReceiveRequest(ack=sluice_pb2.Settle(request_id=1, receipt=f"{TOO_BIG}.1")),
        ),
    ),
    BadInput(
        "dead letter id 2^63",
        library=lambda s: s.redrive_dead_letters("jobs", dead_letter_ids=[TOO_BIG]),
        cli=(["dead-letters", "redrive", "jobs", "--id", str(TOO_BIG)], None),
        rest=("POST", "/api/event-streams/jobs/dead-letters/redrive", {"dead_letter_ids": [TOO_BIG]}),
    ),
    BadInput(
        "group dead letter id 2^63",
        rest=("GET", f"/api/event-streams/orders/groups/billing/dead-letters/{TOO_BIG}", None),
    ),
    BadInput(
        "purge streams deleted 1e12 seconds ago",
        library=lambda s: s.purge_deleted_streams(older_than=HUGE),
        cli=(["streams", "purge-deleted", "--older-than", "1e12", "--yes"], None),
    ),
    BadInput(
        "retention max age past year 9999",
        cli=(["retention", "set", "orders", "--max-age", "99999999999d"], None),
    ),
)


def cases_for(door: str) -> list[BadInput]:
    return [case for case in CASES if getattr(case, door) is not None]
