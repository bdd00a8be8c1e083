"""Prometheus counters of retention, registered in Sluice's registry (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

from sluice.observability.metrics import default_metrics

pruned_events = Counter(
    "sluice_retention_pruned_events",
    "Events deleted by retention.",
    ("stream",),
    registry=default_metrics.registry,
)
pruned_bytes = Counter(
    "sluice_retention_pruned_bytes",
    "Payload bytes of the events deleted by retention.",
    ("stream",),
    registry=default_metrics.registry,
)
truncations = Counter(
    "sluice_retention_truncations",
    "Consumer groups a prune left behind the start of a partition's log (events they never consumed were deleted).",
    ("stream", "group"),
    registry=default_metrics.registry,
)


def record_pruned(stream: str, *, events: int, bytes_: int) -> None:
    if events > 0:
        pruned_events.labels(stream).inc(events)
        pruned_bytes.labels(stream).inc(max(bytes_, 0))


def record_truncation(stream: str, group: str) -> None:
    truncations.labels(stream, group).inc()
