"""Prometheus metrics of projections, in prometheus-client's default registry (served on ``/metrics`` by
``sluice project``), labelled by projection name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LABELS = ("projection",)

EVENTS_APPLIED = Counter(
    "sluice_projection_events_applied", "Events applied (with their checkpoint) to any version.", LABELS
)
BATCH_SECONDS = Histogram(
    "sluice_projection_batch_seconds", "Time to apply one batch and commit its checkpoint.", LABELS
)
EVENTS_DEAD_LETTERED = Counter(
    "sluice_projection_events_dead_lettered",
    "Events a version could not apply (a value that does not convert to its column type, a key without a "
    "value, a payload that is not JSON), recorded in projection_dead_letters and passed.",
    LABELS,
)
ACTIVE_VERSION = Gauge("sluice_projection_active_version", "The read-model version readers see.", LABELS)
REBUILD_PERCENT = Gauge(
    "sluice_projection_rebuild_percent", "Progress of the current or last rebuild (100 when none runs).", LABELS
)
