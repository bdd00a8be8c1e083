"""Every example applies and the operator drives it to its expected conditions, with observedGeneration set.

The examples point at the ``sluice-database`` Secret; the test's Secret holds the test database's URI. No
kubelet runs, so the workloads' pods never start: the ConsumerGroup and the Projection wait on their
Deployments and the Replay on its Job, and say so, instead of claiming Ready. The RetentionPolicy needs no pod:
it is Ready, waiting for its schedule. (tests/kopf_operator/test_projections_and_replays.py runs the pods'
commands and sees those kinds through to Ready.)
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
    assert stream["status"]["headOffsets"] == [{"partition": p, "head": 0, "first": 0} for p in range(4)]
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

    projection = wait_for_object(
        kubernetes_cluster, namespace, "Projection", "order-summary", reconciled_with("Ready", "False")
    )
    assert condition_status(projection, "SourcesReady") == "True"
    assert conditions(projection)["WorkloadAvailable"]["reason"] == "ReplicasNotReady"
    replay = wait_for_object(
        kubernetes_cluster,
        namespace,
        "Replay",
        "orders-to-email-notifications",
        lambda body: (body.get("status") or {}).get("phase") == "Pending",
    )
    assert condition_status(replay, "Succeeded") == "Unknown"
    assert condition_status(replay, "Ready") != "True"  # Unknown: the Job has not run yet
    policy = wait_for_object(
        kubernetes_cluster, namespace, "RetentionPolicy", "orders-nightly", reconciled_with("Ready", "True")
    )
    assert policy["status"]["matchedStreams"] == ["orders"]
    assert conditions(policy)["Enforced"]["reason"] == "NotDue"  # nightly at 03:00, unless asked for sooner
