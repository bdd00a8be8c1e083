"""Every example applies and the operator drives it to its expected conditions, with observedGeneration set.

The examples point at the ``sluice-database`` Secret; the test's Secret holds the test database's URI. Kinds
whose runtime command is still to come (Projection, Replay, RetentionPolicy) must say so (Stalled with
reason RuntimeCommandPending or RetentionRuntimePending) instead of claiming Ready.
"""

from __future__ import annotations

import pytest

import sluice
from tests.custom_resources.cluster import KubernetesCluster
from tests.custom_resources.manifests import load_example
from tests.kopf_operator.helpers import condition_status, conditions, reconciled_with, wait_for_object
from tests.kopf_operator.operator_process import OperatorProcess

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]


async def test_every_example_reaches_its_expected_conditions(
    kubernetes_cluster: KubernetesCluster,
    operator_namespace: str,
    running_operator: OperatorProcess,
    postgres_dsn: str,
) -> None:
    namespace = operator_namespace
    for file_name in (
        "event-stream.yaml",
        "consumer-group.yaml",
        "projection.yaml",
        "replay.yaml",
        "retention-policy.yaml",
    ):
        kubernetes_cluster.create(namespace, load_example(file_name))

    stream = wait_for_object(kubernetes_cluster, namespace, "EventStream", "orders", reconciled_with("Ready", "True"))
    assert condition_status(stream, "SchemaReady") == "True"
    assert condition_status(stream, "Stalled") == "False"
    assert stream["status"]["headOffsets"] == [{"partition": p, "head": 0} for p in range(4)]
    async with await sluice.connect(postgres_dsn) as store:
        info = await store.get_stream("orders")
    assert info.partitions == 4

    # Without a kubelet no pod becomes ready: the group waits on its workload, and says so.
    group = wait_for_object(
        kubernetes_cluster, namespace, "ConsumerGroup", "email-notifications", reconciled_with("Ready", "False")
    )
    assert condition_status(group, "StreamFound") == "True"
    assert conditions(group)["WorkloadAvailable"]["reason"] == "ReplicasNotReady"
    assert group["status"]["selector"]
    assert group["status"]["idleReplicas"] == 0

    for kind, name, reason in (
        ("Projection", "order-summary", "RuntimeCommandPending"),
        ("Replay", "orders-to-email-notifications", "RuntimeCommandPending"),
        ("RetentionPolicy", "orders-nightly", "RetentionRuntimePending"),
    ):
        body = wait_for_object(kubernetes_cluster, namespace, kind, name, reconciled_with("Stalled", "True"))
        assert condition_status(body, "Ready") == "False", kind
        assert conditions(body)["Stalled"]["reason"] == reason, kind
    policy = kubernetes_cluster.get(namespace, "RetentionPolicy", "orders-nightly")
    assert policy["status"]["matchedStreams"] == ["orders"]
    replay = kubernetes_cluster.get(namespace, "Replay", "orders-to-email-notifications")
    assert replay["status"]["phase"] == "Pending"
