"""The operator's per-resource gauges (what the SluiceProjectionNotReady and SluiceReplayFailed alerts read):
set from the status the operator computes, removed when the object is gone (by a resync's listing too)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sluice_operator.metrics import (
    CONSUMER_GROUP_LAG_EVENTS,
    forget_resource,
    forget_resources_not_listed,
    record_resource_status,
)


def gauge(name: str, kind: str, object_name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"kind": kind, "namespace": "shop", "name": object_name})


def test_ready_and_failed_follow_the_status() -> None:
    ready = {"conditions": [{"type": "Ready", "status": "True"}], "phase": "Running"}
    record_resource_status("Replay", "shop", "backfill", ready)
    assert gauge("sluice_operator_resource_ready", "Replay", "backfill") == 1
    assert gauge("sluice_operator_resource_failed", "Replay", "backfill") == 0
    failed = {"conditions": [{"type": "Ready", "status": "False"}], "phase": "Failed"}
    record_resource_status("Replay", "shop", "backfill", failed)
    assert gauge("sluice_operator_resource_ready", "Replay", "backfill") == 0
    assert gauge("sluice_operator_resource_failed", "Replay", "backfill") == 1


def test_no_ready_condition_counts_as_not_ready_and_deleted_objects_disappear() -> None:
    record_resource_status("Projection", "shop", "revenue", {"conditions": [{"type": "Synced", "status": "True"}]})
    assert gauge("sluice_operator_resource_ready", "Projection", "revenue") == 0
    forget_resource("Projection", "shop", "revenue")
    assert gauge("sluice_operator_resource_ready", "Projection", "revenue") is None
    forget_resource("Projection", "shop", "revenue")  # twice is harmless


def test_a_resync_listing_prunes_the_gauges_of_objects_that_are_gone() -> None:
    for name in ("kept", "gone"):
        record_resource_status("Replay", "shop", name, {"conditions": []})
    record_resource_status("Replay", "elsewhere", "other-namespace", {"conditions": []})
    record_resource_status("EventStream", "shop", "gone", {"conditions": []})
    CONSUMER_GROUP_LAG_EVENTS.labels(namespace="shop", consumer_group="mailer").set(5)
    record_resource_status("ConsumerGroup", "shop", "mailer", {"conditions": []})
    forget_resources_not_listed("Replay", "shop", {("shop", "kept")})
    assert gauge("sluice_operator_resource_ready", "Replay", "kept") == 0
    assert gauge("sluice_operator_resource_ready", "Replay", "gone") is None
    other = {"kind": "Replay", "namespace": "elsewhere", "name": "other-namespace"}
    assert REGISTRY.get_sample_value("sluice_operator_resource_ready", other) == 0  # not in the listed namespace
    assert gauge("sluice_operator_resource_ready", "EventStream", "gone") == 0  # another kind
    forget_resources_not_listed("ConsumerGroup", None, set())
    lag = {"namespace": "shop", "consumer_group": "mailer"}
    assert REGISTRY.get_sample_value("sluice_operator_consumer_group_lag_events", lag) is None
