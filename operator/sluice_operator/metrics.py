"""The operator's Prometheus metrics (served on ``--metrics-port``): reconciles and their durations,
consumer-group lag, and each custom resource's Ready condition and failed phase as its status was last written."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CONSUMER_GROUP_LAG_EVENTS",
    "CONSUMER_GROUP_LAG_SECONDS",
    "RECONCILES",
    "RECONCILE_SECONDS",
    "RESOURCE_FAILED",
    "RESOURCE_READY",
    "forget_resource",
    "forget_resources_not_listed",
    "record_resource_status",
]

RECONCILES = Counter(
    "sluice_operator_reconciles_total",
    "Reconciles of Sluice custom resources, by kind and result (ok or error).",
    ["kind", "result"],
)
RECONCILE_SECONDS = Histogram(
    "sluice_operator_reconcile_duration_seconds",
    "Time one reconcile of a Sluice custom resource took (errors included), by kind.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
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
RESOURCE_READY = Gauge(
    "sluice_operator_resource_ready",
    "1 when a custom resource's Ready condition is True, 0 otherwise, as its status was last written.",
    ["kind", "namespace", "name"],
)
RESOURCE_FAILED = Gauge(
    "sluice_operator_resource_failed",
    "1 when a custom resource's status phase is Failed (a Replay or a Projection rebuild), 0 otherwise.",
    ["kind", "namespace", "name"],
)


_RECORDED_RESOURCES: set[tuple[str, str, str]] = set()
"""(kind, namespace, name) of every object whose gauges are served."""


def record_resource_status(kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
    """Set the Ready and Failed gauges of one object from the status the operator wants it to have."""
    conditions = status.get("conditions") or []
    ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in conditions
        if isinstance(condition, Mapping)
    )
    RESOURCE_READY.labels(kind=kind, namespace=namespace, name=name).set(1 if ready else 0)
    RESOURCE_FAILED.labels(kind=kind, namespace=namespace, name=name).set(1 if status.get("phase") == "Failed" else 0)
    _RECORDED_RESOURCES.add((kind, namespace, name))


def forget_resource(kind: str, namespace: str, name: str) -> None:
    """Remove a deleted object's gauges (a ConsumerGroup's lag gauges too)."""
    _RECORDED_RESOURCES.discard((kind, namespace, name))
    for gauge in (RESOURCE_READY, RESOURCE_FAILED):
        try:
            gauge.remove(kind, namespace, name)
        except KeyError:
            continue
    if kind == "ConsumerGroup":
        for lag_gauge in (CONSUMER_GROUP_LAG_EVENTS, CONSUMER_GROUP_LAG_SECONDS):
            try:
                lag_gauge.remove(namespace, name)
            except KeyError:
                continue


def forget_resources_not_listed(kind: str, namespace: str | None, listed: Collection[tuple[str, str]]) -> None:
    """After listing every ``kind`` object (in ``namespace``; None: in all): remove the gauges of those that are
    gone, as (namespace, name) ``listed`` says. Deletions reach no reconcile, so the resync prunes."""
    for recorded_kind, recorded_namespace, name in sorted(_RECORDED_RESOURCES):
        in_scope = recorded_kind == kind and (namespace is None or recorded_namespace == namespace)
        if in_scope and (recorded_namespace, name) not in listed:
            forget_resource(kind, recorded_namespace, name)
