"""KEDA built from its Go module runs against the local control plane: the aggregation layer lets
kube-apiserver reach its metrics adapter, so ``v1beta1.external.metrics.k8s.io`` is Available and the
external metrics API answers through kube-apiserver."""

from __future__ import annotations

import json

import pytest

from sluice_devkit.keda import METRICS_API_SERVICE, LocalKeda
from tests.custom_resources.cluster import KubernetesCluster

pytestmark = [pytest.mark.kubernetes, pytest.mark.keda, pytest.mark.slow]


def test_the_external_metrics_api_service_is_available(local_keda: LocalKeda, keda_cluster: KubernetesCluster) -> None:
    available = local_keda.api_service_conditions()["Available"]
    assert (available["status"], available["reason"]) == ("True", "Passed"), available
    # Through kube-apiserver's front proxy to the adapter: discovery of the aggregated group.
    resources = json.loads(keda_cluster.kubectl("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1").stdout)
    assert resources["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    print(f"KEDA ready (APIService Available) {local_keda.ready_after_seconds:.1f} s after start")
    assert METRICS_API_SERVICE == "v1beta1.external.metrics.k8s.io"
