"""Observability of Sluice: correlation ids, structured JSON logs, Prometheus metrics and OpenTelemetry spans.

- ``correlation``: ``with correlation_context("request-42"):`` sets the id that logs, spans and appends carry.
- ``logging``: ``configure_logging("INFO")`` writes one JSON object per record, with the correlation id.
- ``metrics``: instruments in a dedicated ``CollectorRegistry`` and small typed recording functions.
- ``lag_refresher``: a background task that keeps the lag gauges current (collectors are synchronous).
- ``tracing``: ``append_span`` and ``delivery_span``, no-ops until an OpenTelemetry SDK is configured.
"""

from sluice.observability.correlation import correlation_context, current_correlation_id

__all__ = ["correlation_context", "current_correlation_id"]
