"""OpenTelemetry spans for appends and deliveries, carrying the correlation id.

They use only ``opentelemetry-api``. With an SDK configured (``opentelemetry-sdk`` and a ``TracerProvider``,
given or set globally), every append and every delivery becomes a span named ``sluice.append`` /
``sluice.deliver`` with messaging attributes. Without one (the API's proxy provider, or a no-op provider)
there is nothing to record, and the span is one shared context manager that yields a non-recording span: no
attributes are built and no tracer is asked (the API's own no-op path cost about 10 µs per append, and a
worker pays it per delivered event). The provider is looked up on each call, so one configured after import
is used from the next span on.
"""

from __future__ import annotations

import contextlib
from typing import Final

from opentelemetry import trace

from sluice.observability.correlation import current_correlation_id

TRACER_NAME = "sluice"
APPEND_SPAN_NAME = "sluice.append"
DELIVERY_SPAN_NAME = "sluice.deliver"
CORRELATION_ATTRIBUTE = "sluice.correlation_id"


NO_SPAN: Final[contextlib.AbstractContextManager[trace.Span]] = contextlib.nullcontext(trace.INVALID_SPAN)
"""What a span is while nothing records spans (reusable: it keeps no state)."""
NOT_RECORDING_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
"""The API's providers that record nothing: the proxy ``get_tracer_provider()`` returns until one is set."""


def recording_tracer(provider: trace.TracerProvider | None) -> trace.Tracer | None:
    """Sluice's tracer from ``provider`` (default: the global one), or None when that provider records nothing.
    Looked up on each call (cheap) so that a provider configured after import is used."""
    chosen = provider if provider is not None else trace.get_tracer_provider()
    if isinstance(chosen, NOT_RECORDING_PROVIDERS):
        return None
    return chosen.get_tracer(TRACER_NAME)


def append_span(
    stream_name: str,
    *,
    event_count: int,
    correlation_id: str | None = None,
    partition: int | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> contextlib.AbstractContextManager[trace.Span]:
    """A producer span around one append of ``event_count`` events to ``stream_name``.

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace.set_tracer_provider``)."""
    tracer = recording_tracer(tracer_provider)
    if tracer is None:
        return NO_SPAN
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
    return tracer.start_as_current_span(APPEND_SPAN_NAME, kind=trace.SpanKind.PRODUCER, attributes=attributes)


def delivery_span(
    stream_name: str,
    *,
    group_id: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    correlation_id: str | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> contextlib.AbstractContextManager[trace.Span]:
    """A consumer span around the processing of one delivered event or message."""
    tracer = recording_tracer(tracer_provider)
    if tracer is None:
        return NO_SPAN
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
    return tracer.start_as_current_span(DELIVERY_SPAN_NAME, kind=trace.SpanKind.CONSUMER, attributes=attributes)
