"""An operator killed mid-reconcile (SIGKILL) and started again converges, without duplicate children,
duplicate conditions, or a Deployment that keeps being rewritten."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kubernetes.client import AppsV1Api

from tests.custom_resources.cluster import KubernetesCluster
from tests.custom_resources.manifests import load_example
from tests.kopf_operator.helpers import reconciled_with, wait_for_object
from tests.kopf_operator.operator_process import OperatorProcess
from tests.kopf_operator.workloads import get_deployment

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

GROUPS = ("group-a", "group-b", "group-c")


async def test_a_restarted_operator_converges_without_duplicates(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, postgres_dsn: str, tmp_path: Path
) -> None:
    namespace = operator_namespace

    def operator() -> OperatorProcess:
        return OperatorProcess(
            kubeconfig_path=kubernetes_cluster.kubeconfig_path,
            namespace=namespace,
            default_dsn=postgres_dsn,
            log_path=tmp_path / "operator.log",
        )

    first = operator().start()
    try:
        kubernetes_cluster.create(namespace, load_example("event-stream.yaml"))
        for name in GROUPS:
            group = load_example("consumer-group.yaml")
            group["metadata"]["name"] = name
            kubernetes_cluster.create(namespace, group)
        await asyncio.sleep(0.5)  # let it start reconciling, then kill it in the middle
    finally:
        first.kill()

    with operator() as second:
        for name in GROUPS:
            body = wait_for_object(
                kubernetes_cluster, namespace, "ConsumerGroup", name, reconciled_with("StreamFound", "True")
            )
            types = [condition["type"] for condition in body["status"]["conditions"]]
            assert len(types) == len(set(types)), second.log_tail()
        wait_for_object(kubernetes_cluster, namespace, "EventStream", "orders", reconciled_with("Ready", "True"))

        deployments = AppsV1Api(kubernetes_cluster.api_client).list_namespaced_deployment(namespace).items
        assert sorted(deployment.metadata.name for deployment in deployments) == sorted(GROUPS)
        generations = {name: (get_deployment(kubernetes_cluster, namespace, name) or {})["metadata"]["generation"]
                       for name in GROUPS}  # fmt: skip
        await asyncio.sleep(4)  # several resync passes (1 s each here)
        for name in GROUPS:
            deployment = get_deployment(kubernetes_cluster, namespace, name)
            assert deployment is not None
            assert deployment["metadata"]["generation"] == generations[name]  # re-applied, never rewritten
        replica_sets = AppsV1Api(kubernetes_cluster.api_client).list_namespaced_replica_set(namespace).items
        assert len(replica_sets) == len(GROUPS)  # one pod template per group: no churn
