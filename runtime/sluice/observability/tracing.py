"""OpenTelemetry spans for appends and deliveries, carrying the correlation id.

They use only ``opentelemetry-api``: without a configured SDK the tracer is a no-op and a span costs
a few microseconds. With one (``opentelemetry-sdk`` and a ``TracerProvider``), every append and
every delivery becomes a span named ``sluice.append`` / ``sluice.deliver`` with messaging attributes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace

from sluice.observability.correlation import current_correlation_id

TRACER_NAME = "sluice"
APPEND_SPAN_NAME = "sluice.append"
DELIVERY_SPAN_NAME = "sluice.deliver"
CORRELATION_ATTRIBUTE = "sluice.correlation_id"


def _tracer(provider: trace.TracerProvider | None) -> trace.Tracer:
    # Looked up on each call (cheap) so that a provider configured after import is used.
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)


@contextlib.contextmanager
def append_span(
    stream_name: str,
    *,
    event_count: int,
    correlation_id: str | None = None,
    partition: int | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[trace.Span]:
    """A producer span around one append of ``event_count`` events to ``stream_name``.

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace.set_tracer_provider``)."""
    attributes: dict[str, str | int] = {
        "messaging.system": "sluice",
        "messaging.operation.type": "send",
        "messaging.destination.name": stream_name,
        "messaging.batch.message_count": event_count,
    }
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    correlation = correlation_id or current_correlation_id()
    if correlation is not None:
        attributes[CORRELATION_ATTRIBUTE] = correlation
    with _tracer(tracer_provider).start_as_current_span(
        APPEND_SPAN_NAME, kind=trace.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


@contextlib.contextmanager
def delivery_span(
    stream_name: str,
    *,
    group_id: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    correlation_id: str | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[trace.Span]:
    """A consumer span around the processing of one delivered event or message."""
    attributes: dict[str, str | int] = {
        "messaging.system": "sluice",
        "messaging.operation.type": "process",
        "messaging.destination.name": stream_name,
    }
    if group_id is not None:
        attributes["messaging.consumer.group.name"] = group_id
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.message.id"] = str(offset)
    correlation = correlation_id or current_correlation_id()
    if correlation is not None:
        attributes[CORRELATION_ATTRIBUTE] = correlation
    with _tracer(tracer_provider).start_as_current_span(
        DELIVERY_SPAN_NAME, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span
