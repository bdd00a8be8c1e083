"""The HTTP sink: CloudEvents in binary content mode to a real local HTTP server, with retries."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest

import sluice
from sluice import EventData, EventStore
from sluice.core.errors import InvalidArgumentError, SinkDeliveryError
from sluice.services.retries import RetryPolicy, deliver_with_retries
from sluice.services.sinks.http import DELIVERY_ATTEMPT_HEADER, HttpSink, validate_sink_url
from tests.sinks.receiver import Receiver

FAST_RETRIES = RetryPolicy(max_attempts=4, delay=0.01, max_delay=0.05)


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    opened = await sluice.connect(postgres_dsn)
    yield opened
    await opened.close()


async def stored_events(store: EventStore, stream: str, *events: EventData) -> list[sluice.RecordedEvent]:
    await store.append(stream, list(events), correlation_id="request-7")
    return [event async for event in store.read_stream(stream)]


async def test_an_event_arrives_as_a_binary_mode_cloud_event(store: EventStore, receiver: Receiver) -> None:
    event_id = uuid.uuid4()
    [event] = await stored_events(
        store, "orders", EventData("OrderPlaced", {"order_id": "o-1", "total": 1250}, event_id=event_id)
    )
    async with HttpSink(receiver.url, group_id="billing") as sink:
        await sink.deliver(event)
    [request] = receiver.requests
    assert request.headers["ce-specversion"] == "1.0"
    assert request.headers["ce-id"] == str(event_id)
    assert request.headers["ce-type"] == "OrderPlaced"
    assert request.headers["ce-source"] == "/sluice/streams/orders"
    assert request.headers["ce-subject"] == "0/0"
    assert request.headers["ce-sluicegroup"] == "billing"
    assert request.headers["ce-correlationid"] == "request-7"
    assert request.headers["content-type"] == "application/json"
    assert request.body == event.payload  # the stored bytes, unchanged
    parsed = request.cloud_event()
    assert parsed.get_id() == str(event_id)
    assert parsed.get_data() == {"order_id": "o-1", "total": 1250}
    assert parsed.get_time() == event.timestamp
    assert parsed.get_extension("sluiceoffset") == "0"


async def test_binary_payloads_keep_their_bytes(store: EventStore, receiver: Receiver) -> None:
    [event] = await stored_events(store, "blobs", EventData("Blob", b"\x00\xffraw"))
    async with HttpSink(receiver.url) as sink:
        await sink.deliver(event)
    [request] = receiver.requests
    assert request.body == b"\x00\xffraw"
    assert request.headers["content-type"] == "application/octet-stream"
    assert "ce-sluicegroup" not in request.headers


async def test_failures_are_retried_until_a_2xx_with_the_same_event_id(store: EventStore, receiver: Receiver) -> None:
    answers = iter([503, 500, 429, 204])
    receiver.choose_status = lambda request: next(answers)
    [event] = await stored_events(store, "orders", EventData("OrderPlaced", {"n": 1}))
    async with HttpSink(receiver.url) as sink:
        outcome = await deliver_with_retries(sink.deliver, event, FAST_RETRIES)
    assert outcome.delivered
    assert outcome.attempts == 4
    assert [request.status for request in receiver.requests] == [503, 500, 429, 204]
    assert [request.headers[DELIVERY_ATTEMPT_HEADER.lower()] for request in receiver.requests] == ["1", "2", "3", "4"]
    assert {request.event_id for request in receiver.requests} == {str(event.event_id)}


async def test_a_sink_that_keeps_failing_gives_up_after_max_attempts(store: EventStore, receiver: Receiver) -> None:
    receiver.choose_status = lambda request: 500
    [event] = await stored_events(store, "orders", EventData("OrderPlaced", {"n": 1}))
    async with HttpSink(receiver.url) as sink:
        outcome = await deliver_with_retries(sink.deliver, event, FAST_RETRIES)
    assert not outcome.delivered
    assert not outcome.abandoned
    assert outcome.attempts == 4
    assert len(receiver.requests) == 4
    assert outcome.error is not None
    assert "answered 500" in outcome.error
    assert outcome.first_attempt_at <= outcome.last_attempt_at


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_transport_failures_are_typed_errors(store: EventStore) -> None:
    [event] = await stored_events(store, "orders", EventData("OrderPlaced", {"n": 1}))
    async with HttpSink(f"http://127.0.0.1:{free_port()}/events", timeout=2) as sink:
        with pytest.raises(SinkDeliveryError, match="failed: ConnectError") as caught:
            await sink.deliver(event)
    assert caught.value.status_code is None


async def test_stopping_cuts_the_backoff_short_and_abandons_the_event(store: EventStore, receiver: Receiver) -> None:
    receiver.choose_status = lambda request: 500
    [event] = await stored_events(store, "orders", EventData("OrderPlaced", {"n": 1}))
    stopping = asyncio.Event()
    slow = RetryPolicy(max_attempts=5, delay=60, max_delay=60)
    async with HttpSink(receiver.url) as sink:
        delivery = asyncio.create_task(deliver_with_retries(sink.deliver, event, slow, stopping=stopping))
        await asyncio.to_thread(receiver.wait_for_requests, 1)
        stopping.set()
        outcome = await asyncio.wait_for(delivery, timeout=5)
    assert outcome.abandoned
    assert not outcome.delivered


@pytest.mark.parametrize("url", ["ftp://host/x", "localhost:8080", "http://", "/events"])
def test_sink_urls_must_be_absolute_http(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid sink URL"):
        validate_sink_url(url)
