"""examples/autoscaling/hpa.yaml on the real API server with kube-controller-manager running, against the example
ConsumerGroup as the operator reconciles it (tests/custom_resources checks /scale and an HPA against a status
written by hand; here the operator fills the selector and the replicas, and the HPA is the shipped example).

No custom metrics API is registered on the test cluster, so the HPA cannot read the lag; its conditions show
it got everything else: the ConsumerGroup's /scale (AbleToScale True, SucceededGetScale, and the current
replicas the operator reports), a usable selector (the metric fails, not the selector: FailedGetObjectMetric,
never InvalidSelector), and the metric it asks for is the one the prometheus-adapter rules serve.
"""

from __future__ import annotations

import pytest
from kubernetes.client import AutoscalingV2Api, V2HorizontalPodAutoscalerCondition

from tests.custom_resources.cluster import KubernetesCluster, wait_until
from tests.custom_resources.manifests import load_example
from tests.examples.autoscaling import one_document
from tests.kopf_operator.helpers import wait_for_object
from tests.kopf_operator.operator_process import OperatorProcess

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

HPA_TIMEOUT_SECONDS = 90
"""The HPA controller syncs every 3 s here, and its discovery cache may need 30 s to learn a new CRD's kind."""


def test_example_hpa_resolves_the_operator_reconciled_consumer_group(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess
) -> None:
    namespace = operator_namespace
    for file_name in ("event-stream.yaml", "consumer-group.yaml"):
        kubernetes_cluster.create(namespace, load_example(file_name))
    group_name = load_example("consumer-group.yaml")["metadata"]["name"]
    group = wait_for_object(
        kubernetes_cluster,
        namespace,
        "ConsumerGroup",
        group_name,
        lambda body: bool((body.get("status") or {}).get("selector")) and (body["status"].get("replicas") or 0) > 0,
    )
    autoscaler = one_document("hpa.yaml", "HorizontalPodAutoscaler")
    kubernetes_cluster.create_horizontal_pod_autoscaler(namespace, autoscaler)
    name = autoscaler["metadata"]["name"]
    observed: set[tuple[str, str, str, str]] = set()

    def read_conditions() -> dict[str, V2HorizontalPodAutoscalerCondition]:
        conditions = kubernetes_cluster.horizontal_pod_autoscaler_conditions(namespace, name)
        observed.update(
            (condition.type, condition.status, condition.reason or "", condition.message or "")
            for condition in conditions.values()
        )
        return conditions

    conditions = wait_until(
        read_conditions,
        lambda conditions: (
            "ScalingActive" in conditions
            and getattr(conditions.get("AbleToScale"), "reason", None) == "SucceededGetScale"
        ),
        timeout_seconds=HPA_TIMEOUT_SECONDS,
        interval=1,
    )
    able = conditions["AbleToScale"]
    assert (able.status, able.reason) == ("True", "SucceededGetScale")
    active = conditions["ScalingActive"]
    assert (active.status, active.reason) == ("False", "FailedGetObjectMetric"), active
    assert "sluice_consumer_group_lag_events" in (active.message or "")
    assert not any(entry[2] == "InvalidSelector" for entry in observed)
    transient = {entry for entry in observed if entry[2] == "FailedGetScale"}
    assert all('no matches for kind "ConsumerGroup"' in entry[3] for entry in transient), transient

    status = (
        AutoscalingV2Api(kubernetes_cluster.api_client)
        .read_namespaced_horizontal_pod_autoscaler_status(name, namespace)
        .status
    )
    assert status is not None
    assert status.current_replicas == group["status"]["replicas"]
