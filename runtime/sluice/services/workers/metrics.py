"""Prometheus metrics of the consumer worker, in prometheus-client's default registry.

The names carry a ``sluice_worker_`` prefix so they never collide with the runtime's own metrics
when both are loaded in one process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LABELS = ("stream", "group")

EVENTS_DELIVERED = Counter("sluice_worker_events_delivered", "Events the sink or handler accepted.", LABELS)
DELIVERY_FAILURES = Counter("sluice_worker_delivery_failures", "Failed delivery attempts (each retry counts).", LABELS)
EVENTS_DEAD_LETTERED = Counter(
    "sluice_worker_events_dead_lettered",
    "Events buried as dead letters of the group after their last attempt (failed redrives included).",
    LABELS,
)
DELIVERY_SECONDS = Histogram(
    "sluice_worker_delivery_seconds", "Time from the first attempt to the outcome, per event.", LABELS
)
OWNED_PARTITIONS = Gauge("sluice_worker_owned_partitions", "Partitions this member owns.", LABELS)
REDRIVES_DELIVERED = Counter(
    "sluice_worker_redrives_delivered", "Redriven dead letters the sink or handler accepted.", LABELS
)
