"""The operator's /metrics, scraped from the real process (``python -m sluice_operator --metrics-port``) on the test
control plane: per-resource Ready and Failed gauges follow the objects' status, reconciles are counted and timed,
and every operator metric the dashboards and alerts use is among the names it serves."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.promql_names import metric_names
from tests.alerts.test_metric_names import alert_expressions, dashboard_queries, exported_names
from tests.custom_resources.cluster import KubernetesCluster
from tests.kopf_operator.conftest import DATABASE_SECRET, kubernetes_cluster, operator_namespace, sluice_crds
from tests.kopf_operator.helpers import reconciled_with, wait_for_object
from tests.kopf_operator.operator_process import OperatorProcess, free_port

__all__ = ["kubernetes_cluster", "operator_namespace", "sluice_crds"]

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

DATABASE = {"secretRef": {"name": DATABASE_SECRET}}
SCRAPE_SECONDS = 60.0


def manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "sluice.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def operator_with_metrics(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, postgres_dsn: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(
        kubeconfig_path=kubernetes_cluster.kubeconfig_path,
        namespace=operator_namespace,
        default_dsn=postgres_dsn,
        log_path=tmp_path / "operator.log",
        metrics_port=free_port(),
    )
    with operator:
        yield operator
    print("operator log:\n" + operator.log_tail(200))  # shown by pytest for failing tests


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text: str = answer.read().decode()
        return text


def sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of the sample ``name{labels}`` (labels in any order), None when absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def scrape_until(port: int, wanted: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> str:
    deadline = time.monotonic() + SCRAPE_SECONDS
    while True:
        text = scrape(port)
        if all(sample(text, name, dict(labels)) == value for (name, labels), value in wanted.items()):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"the operator's /metrics never showed {wanted}:\n{text}")
        time.sleep(0.5)


def test_the_operator_serves_resource_status_and_reconcile_metrics(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, operator_with_metrics: OperatorProcess
) -> None:
    namespace = operator_namespace
    kubernetes_cluster.create(namespace, manifest("EventStream", "orders", {"database": DATABASE}))
    wait_for_object(kubernetes_cluster, namespace, "EventStream", "orders", reconciled_with("Ready", "True"))
    replay = {"source": {"stream": "no-such-stream"}, "fromOffset": 0, "target": {"stream": "orders"}}
    kubernetes_cluster.create(namespace, manifest("Replay", "backfill", replay))
    wait_for_object(kubernetes_cluster, namespace, "Replay", "backfill", reconciled_with("Ready", "False"))

    ready = "sluice_operator_resource_ready"
    text = scrape_until(
        operator_with_metrics.metrics_port,
        {
            (ready, (("kind", "EventStream"), ("namespace", namespace), ("name", "orders"))): 1.0,
            (ready, (("kind", "Replay"), ("namespace", namespace), ("name", "backfill"))): 0.0,
            ("sluice_operator_resource_failed", (("kind", "Replay"), ("name", "backfill"))): 0.0,
        },
    )
    reconciled = sample(text, "sluice_operator_reconciles_total", {"kind": "EventStream", "result": "ok"})
    assert reconciled is not None
    assert reconciled >= 1
    timed = sample(text, "sluice_operator_reconcile_duration_seconds_count", {"kind": "EventStream"})
    assert timed is not None
    assert timed >= reconciled

    served = exported_names(text)
    used = {
        name
        for _where, expression in [*dashboard_queries(), *alert_expressions()]
        for name in metric_names(expression)
        if name.startswith("sluice_operator_")
    }
    assert len(used) >= 5
    assert sorted(used - served) == []

    kubernetes_cluster.kubectl("delete", "replay", "backfill", "--wait=true", namespace=namespace)
    deadline = time.monotonic() + SCRAPE_SECONDS
    while sample(scrape(operator_with_metrics.metrics_port), ready, {"kind": "Replay", "name": "backfill"}) is not None:
        assert time.monotonic() < deadline, "the deleted Replay's gauge is still served"
        time.sleep(0.5)
