"""The operator's per-resource gauges (what the SluiceProjectionNotReady and SluiceReplayFailed alerts read):
set from the status the operator computes, removed when the object is gone."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sluice_operator.metrics import forget_resource, record_resource_status


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
