"""EventStreams through the running operator: deletion under each deletionPolicy (kopf's finalizer) and a
namespace deleted while the operator runs. Status, growth and outages are tests/operator_controllers'."""

from __future__ import annotations

import time
from typing import Any

import pytest

import sluice
from sluice.core.errors import StreamNotFoundError
from tests.custom_resources.cluster import KubernetesCluster, wait_until
from tests.kopf_operator.conftest import DATABASE_SECRET
from tests.kopf_operator.helpers import (
    condition_status,
    reconciled_with,
    wait_for_object,
)
from tests.kopf_operator.operator_process import OperatorProcess

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

FINALIZER = "sluice.dev/delete-stream-data"


def event_stream(name: str, *, secret: str = DATABASE_SECRET, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "EventStream",
        "metadata": {"name": name},
        "spec": {"database": {"secretRef": {"name": secret}}, **spec},
    }


async def stored_partitions(dsn: str, name: str) -> int | None:
    async with await sluice.connect(dsn) as store:
        try:
            return (await store.get_stream(name)).partitions
        except StreamNotFoundError:
            return None


def object_gone(cluster: KubernetesCluster, namespace: str, name: str) -> bool:
    listed = cluster.kubectl("get", "eventstream", name, "--ignore-not-found", "-o", "name", namespace=namespace)
    return listed.stdout.strip() == ""


async def test_retain_keeps_the_data_and_needs_no_finalizer(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess, postgres_dsn: str
) -> None:
    namespace = operator_namespace
    kubernetes_cluster.create(namespace, event_stream("kept", deletionPolicy="retain"))
    body = wait_for_object(kubernetes_cluster, namespace, "EventStream", "kept", reconciled_with("Ready", "True"))
    assert FINALIZER not in (body["metadata"].get("finalizers") or [])

    kubernetes_cluster.kubectl("delete", "eventstream", "kept", "--wait=false", namespace=namespace)
    wait_until(lambda: object_gone(kubernetes_cluster, namespace, "kept"), bool, timeout_seconds=10)
    assert await stored_partitions(postgres_dsn, "kept") == 1


async def test_delete_drops_the_data_through_a_finalizer(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess, postgres_dsn: str
) -> None:
    namespace = operator_namespace
    kubernetes_cluster.create(namespace, event_stream("scratch", deletionPolicy="delete"))
    body = wait_for_object(
        kubernetes_cluster,
        namespace,
        "EventStream",
        "scratch",
        lambda body: (
            FINALIZER in (body["metadata"].get("finalizers") or []) and condition_status(body, "Ready") == "True"
        ),
    )
    assert body["spec"]["deletionPolicy"] == "delete"
    assert await stored_partitions(postgres_dsn, "scratch") == 1

    kubernetes_cluster.kubectl("delete", "eventstream", "scratch", "--wait=false", namespace=namespace)
    wait_until(lambda: object_gone(kubernetes_cluster, namespace, "scratch"), bool, timeout_seconds=30)
    assert await stored_partitions(postgres_dsn, "scratch") is None


async def test_switching_the_policy_adds_and_removes_the_finalizer(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess
) -> None:
    namespace = operator_namespace
    kubernetes_cluster.create(namespace, event_stream("switching", deletionPolicy="delete"))
    wait_for_object(
        kubernetes_cluster,
        namespace,
        "EventStream",
        "switching",
        lambda body: FINALIZER in (body["metadata"].get("finalizers") or []),
    )
    kubernetes_cluster.merge_patch(namespace, "EventStream", "switching", {"spec": {"deletionPolicy": "retain"}})
    wait_for_object(
        kubernetes_cluster,
        namespace,
        "EventStream",
        "switching",
        lambda body: FINALIZER not in (body["metadata"].get("finalizers") or []),
    )


async def test_a_namespace_is_deleted_promptly_while_the_operator_runs(
    kubernetes_cluster: KubernetesCluster,
    sluice_crds: list[str],
    running_operator: OperatorProcess,
    operator_namespace: str,
    postgres_dsn: str,
) -> None:
    # The operator watches operator_namespace; this test deletes it with both policies inside.
    namespace = operator_namespace
    kubernetes_cluster.create(namespace, event_stream("kept", deletionPolicy="retain"))
    kubernetes_cluster.create(namespace, event_stream("dropped", deletionPolicy="delete"))
    wait_for_object(
        kubernetes_cluster, namespace, "EventStream", "dropped", lambda body: condition_status(body, "Ready") == "True"
    )
    wait_for_object(
        kubernetes_cluster, namespace, "EventStream", "kept", lambda body: condition_status(body, "Ready") == "True"
    )
    started = time.monotonic()
    kubernetes_cluster.delete_namespace(namespace)

    def namespace_gone() -> bool:
        found = kubernetes_cluster.kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name")
        return found.stdout.strip() == ""

    wait_until(namespace_gone, bool, timeout_seconds=60)
    assert time.monotonic() - started < 60
    assert await stored_partitions(postgres_dsn, "kept") == 1
    assert await stored_partitions(postgres_dsn, "dropped") is None
