"""OpenTelemetry spans for appends and deliveries, recorded with the SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sluice import EventData, EventStore
from sluice.observability.correlation import correlation_context
from sluice.observability.tracing import (
    APPEND_SPAN_NAME,
    CORRELATION_ATTRIBUTE,
    DELIVERY_SPAN_NAME,
    NO_SPAN,
    append_span,
    delivery_span,
)


@pytest.fixture
def exporter_and_provider() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def test_append_and_delivery_spans_carry_the_correlation_id(
    exporter_and_provider: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exporter, provider = exporter_and_provider
    with correlation_context("request-42"):
        with append_span("orders", event_count=3, partition=1, tracer_provider=provider):
            pass
        with delivery_span("orders", group_id="email", partition=1, offset=7, tracer_provider=provider):
            pass
    with delivery_span("orders", correlation_id="explicit", tracer_provider=provider):
        pass
    append, delivery, explicit = exporter.get_finished_spans()
    assert append.name == APPEND_SPAN_NAME
    assert append.kind is trace.SpanKind.PRODUCER
    assert append.attributes is not None
    assert append.attributes[CORRELATION_ATTRIBUTE] == "request-42"
    assert append.attributes["messaging.destination.name"] == "orders"
    assert append.attributes["messaging.batch.message_count"] == 3
    assert delivery.name == DELIVERY_SPAN_NAME
    assert delivery.kind is trace.SpanKind.CONSUMER
    assert delivery.attributes is not None
    assert delivery.attributes["messaging.consumer.group.name"] == "email"
    assert delivery.attributes["messaging.message.id"] == "7"
    assert delivery.attributes[CORRELATION_ATTRIBUTE] == "request-42"
    assert explicit.attributes is not None
    assert explicit.attributes[CORRELATION_ATTRIBUTE] == "explicit"


def test_an_exception_is_recorded_on_the_span(
    exporter_and_provider: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exporter, provider = exporter_and_provider
    with pytest.raises(RuntimeError), append_span("orders", event_count=1, tracer_provider=provider):
        raise RuntimeError("boom")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR


def test_without_an_sdk_spans_are_no_ops() -> None:
    with append_span("orders", event_count=1, tracer_provider=trace.NoOpTracerProvider()) as span:
        assert not span.is_recording()


def test_without_a_provider_set_no_span_is_started() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "no test sets the global provider"
    assert append_span("orders", event_count=1) is NO_SPAN
    assert delivery_span("orders", group_id="email", offset=1) is NO_SPAN
    with delivery_span("orders") as span:
        assert not span.is_recording()


async def test_a_provider_set_after_the_first_append_records_the_next_ones(
    store: EventStore,
    exporter_and_provider: tuple[InMemorySpanExporter, TracerProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter, provider = exporter_and_provider
    await store.append("orders", [EventData("E", {"n": 0})])
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)  # as set_tracer_provider would
    with correlation_context("request-7"):
        await store.append("orders", [EventData("E", {"n": 1}), EventData("E", {"n": 2})])
    [span] = exporter.get_finished_spans()
    assert span.name == APPEND_SPAN_NAME
    assert span.attributes is not None
    assert span.attributes["messaging.destination.name"] == "orders"
    assert span.attributes["messaging.batch.message_count"] == 2
    assert span.attributes[CORRELATION_ATTRIBUTE] == "request-7"
