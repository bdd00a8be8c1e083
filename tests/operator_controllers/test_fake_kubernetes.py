"""The fake API itself behaves as the API server does for what the controllers rely on (no database)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio.client.exceptions import ApiException

from tests.operator_controllers.conftest import NAMESPACE, event_stream
from tests.operator_controllers.fake_kubernetes import FakeKubernetes, merge_patch


def test_merge_patch_merges_objects_replaces_lists_and_null_removes() -> None:
    current = {"a": {"x": 1, "y": 2}, "list": [1, 2], "gone": "soon"}
    assert merge_patch(current, {"a": {"y": 3}, "list": [3], "gone": None}) == {"a": {"x": 1, "y": 3}, "list": [3]}


async def test_create_fills_metadata_and_the_crds_defaults() -> None:
    kubernetes = FakeKubernetes()
    kubernetes.create(NAMESPACE, event_stream("orders", status={"ignored": True}))
    body = await kubernetes.get_custom_object("EventStream", NAMESPACE, "orders")
    assert body is not None
    assert body["metadata"]["generation"] == 1
    assert body["metadata"]["uid"]
    assert body["metadata"]["creationTimestamp"].endswith("Z")
    spec = body["spec"]
    assert (spec["partitions"], spec["type"], spec["deletionPolicy"]) == (1, "persistent", "retain")
    assert spec["database"]["schema"] == "sluice"  # defaults reach into present objects
    assert "status" not in body
    with pytest.raises(ApiException) as conflict:
        kubernetes.create(NAMESPACE, event_stream("orders"))
    assert conflict.value.status == 409


async def test_generation_moves_with_the_spec_only_and_status_is_a_merge_patch() -> None:
    kubernetes = FakeKubernetes()
    kubernetes.create(NAMESPACE, event_stream("orders"))
    await kubernetes.patch_status("EventStream", NAMESPACE, "orders", {"a": 1, "conditions": [{"type": "Ready"}]})
    await kubernetes.patch_status("EventStream", NAMESPACE, "orders", {"b": 2, "a": None, "conditions": []})
    kubernetes.patch("EventStream", NAMESPACE, "orders", {"metadata": {"labels": {"team": "shop"}}})
    body = kubernetes.get("EventStream", NAMESPACE, "orders")
    assert body is not None
    assert body["status"] == {"b": 2, "conditions": []}
    assert body["metadata"]["generation"] == 1
    kubernetes.patch("EventStream", NAMESPACE, "orders", {"spec": {"partitions": 2}})
    assert (kubernetes.get("EventStream", NAMESPACE, "orders") or {})["metadata"]["generation"] == 2
    await kubernetes.patch_status("EventStream", NAMESPACE, "gone", {"a": 1})  # a 404 the real wrapper ignores


async def test_missing_objects_read_as_none_and_finalizers_hold_a_deleted_object() -> None:
    kubernetes = FakeKubernetes()
    assert await kubernetes.get_custom_object("EventStream", NAMESPACE, "orders") is None
    assert await kubernetes.read_secret_data(NAMESPACE, "sluice-database") is None
    kubernetes.create(NAMESPACE, event_stream("orders"))
    kubernetes.patch("EventStream", NAMESPACE, "orders", {"metadata": {"finalizers": ["sluice.dev/x"]}})
    kubernetes.delete("EventStream", NAMESPACE, "orders")
    held = await kubernetes.get_custom_object("EventStream", NAMESPACE, "orders")
    assert held is not None
    assert held["metadata"]["deletionTimestamp"]
    kubernetes.patch("EventStream", NAMESPACE, "orders", {"metadata": {"finalizers": None}})
    kubernetes.delete("EventStream", NAMESPACE, "orders")
    assert await kubernetes.list_custom_objects("EventStream", None) == []


async def test_apply_keeps_identity_and_status_and_a_jobs_template_is_immutable() -> None:
    kubernetes = FakeKubernetes()
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "g", "namespace": NAMESPACE},
        "spec": {"replicas": 1, "template": {"spec": {"containers": []}}},
    }
    created = await kubernetes.apply_deployment(deployment)
    kubernetes.mark_deployment_available(NAMESPACE, "g")
    same = await kubernetes.apply_deployment(deployment)
    assert same["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]  # the status moved it
    assert same["status"]["readyReplicas"] == 1
    scaled = await kubernetes.apply_deployment(deployment | {"spec": {**deployment["spec"], "replicas": 3}})
    assert (scaled["metadata"]["uid"], scaled["metadata"]["generation"]) == (created["metadata"]["uid"], 2)
    assert scaled["status"]["readyReplicas"] == 1  # kept until the deployment controller writes it again

    job = {**deployment, "kind": "Job", "metadata": {"name": "r", "namespace": NAMESPACE}}
    await kubernetes.apply_job(job)
    changed = {**job, "spec": {"template": {"spec": {"containers": [{"name": "other"}]}}}}
    with pytest.raises(ApiException) as invalid:
        await kubernetes.apply_job(changed)
    assert invalid.value.status == 422
