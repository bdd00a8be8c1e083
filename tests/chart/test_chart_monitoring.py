"""The chart's monitoring toggles: prometheusRule.enabled renders a PrometheusRule whose rules are exactly
deploy/prometheus/sluice-alerts.yaml, grafanaDashboards.enabled one ConfigMap per dashboard of deploy/grafana/
with the sidecar's label, podMonitor.enabled a PodMonitor selecting the pods the operator labels as ConsumerGroup
workers and projections; all off by default."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice_devkit.control_plane import build_control_plane_binaries
from sluice_operator.reconcile.ownership import Owner, child_labels

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CHART = REPOSITORY_ROOT / "charts" / "sluice"
BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh"
RULES = REPOSITORY_ROOT / "deploy" / "prometheus" / "sluice-alerts.yaml"
DASHBOARDS = REPOSITORY_ROOT / "deploy" / "grafana"

pytestmark = pytest.mark.kubernetes  # helm comes from the control-plane build


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_control_plane_binaries(BUILD_SCRIPT) / "helm"


def render(helm: Path, *settings: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(helm), "template", "sluice", str(CHART), "--namespace", "sluice-system", *settings],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def dashboard_config_maps(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [document for document in of_kind(documents, "ConfigMap") if "-dashboard-" in document["metadata"]["name"]]


def test_monitoring_is_off_by_default(helm: Path) -> None:
    documents = render(helm)
    assert of_kind(documents, "PrometheusRule") == []
    assert dashboard_config_maps(documents) == []


def test_the_prometheus_rule_carries_the_plain_rules_file(helm: Path) -> None:
    documents = render(helm, "--set", "prometheusRule.enabled=true,prometheusRule.labels.release=kube-prometheus")
    (rule,) = of_kind(documents, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "sluice-system"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    assert rule["spec"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))
    summaries = [rule["annotations"]["summary"] for group in rule["spec"]["groups"] for rule in group["rules"]]
    assert "{{ $labels.group }}" in summaries[0]  # Prometheus's own templates are not eaten by Helm


def test_dashboards_become_sidecar_config_maps(helm: Path) -> None:
    documents = render(
        helm,
        "--set",
        "grafanaDashboards.enabled=true,grafanaDashboards.namespace=monitoring",
        "--set-string",
        "grafanaDashboards.annotations.grafana_folder=Sluice",
    )
    config_maps = dashboard_config_maps(documents)
    expected = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARDS.glob("*.json")}
    assert len(expected) == 5
    rendered = {}
    for config_map in config_maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["namespace"] == "monitoring"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Sluice"}
        ((name, text),) = config_map["data"].items()
        rendered[name] = json.loads(text)
    assert rendered == expected


def test_the_pod_monitor_scrapes_workers_and_projections(helm: Path) -> None:
    assert of_kind(render(helm), "PodMonitor") == []
    (everywhere,) = of_kind(render(helm, "--set", "podMonitor.enabled=true"), "PodMonitor")
    assert everywhere["spec"]["namespaceSelector"] == {"any": True}
    assert everywhere["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "sluice-operator"}
    (components,) = everywhere["spec"]["selector"]["matchExpressions"]
    assert components["values"] == ["consumer-group", "projection"]
    assert everywhere["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    (watched,) = of_kind(
        render(helm, "--set", "podMonitor.enabled=true,operator.watchNamespaces={shop,billing}"), "PodMonitor"
    )
    assert watched["spec"]["namespaceSelector"] == {"matchNames": ["shop", "billing"]}
    for kind, selected in (("ConsumerGroup", True), ("Projection", True), ("Replay", False)):
        pod_labels = child_labels(Owner(kind=kind, name="orders", uid="1"))
        matches = all(
            pod_labels.get(key) == value for key, value in everywhere["spec"]["selector"]["matchLabels"].items()
        )
        assert (matches and pod_labels["app.kubernetes.io/component"] in components["values"]) is selected, kind
