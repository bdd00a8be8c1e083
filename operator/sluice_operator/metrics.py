"""The operator's Prometheus metrics (served on ``--metrics-port``): reconciles and consumer-group lag."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["CONSUMER_GROUP_LAG_EVENTS", "CONSUMER_GROUP_LAG_SECONDS", "RECONCILES"]

RECONCILES = Counter(
    "sluice_operator_reconciles_total",
    "Reconciles of Sluice custom resources, by kind and result (ok or error).",
    ["kind", "result"],
)
CONSUMER_GROUP_LAG_EVENTS = Gauge(
    "sluice_operator_consumer_group_lag_events",
    "Events appended but not yet committed by a ConsumerGroup, as last polled.",
    ["namespace", "consumer_group"],
)
CONSUMER_GROUP_LAG_SECONDS = Gauge(
    "sluice_operator_consumer_group_lag_seconds",
    "Age of the oldest event a ConsumerGroup has not committed, in seconds, as last polled.",
    ["namespace", "consumer_group"],
)
