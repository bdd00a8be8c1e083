"""The autoscaling examples without a cluster: every file parses, the HPA and the KEDA ScaledObject target the
example ConsumerGroup and stop at its stream's partition count, the ScaledObject's lag query is keda_lag.sql
word for word, and the prometheus-adapter rules serve the operator's real lag gauges under the name the HPA asks
for (with the chart's ServiceMonitor keeping the label they map).

The KEDA CRDs are not installed on the test control plane, so the ScaledObject and TriggerAuthentication are
checked structurally here (known fields, string-valued trigger metadata as KEDA's schema requires), not by an
API server.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from sluice_devkit.control_plane import build_control_plane_binaries
from sluice_operator.metrics import CONSUMER_GROUP_LAG_EVENTS, CONSUMER_GROUP_LAG_SECONDS
from sluice_operator.models import API_VERSION
from tests.custom_resources.manifests import REPOSITORY_ROOT, load_example
from tests.examples.autoscaling import (
    AUTOSCALING_DIRECTORY,
    autoscaling_documents,
    example_stream_partitions,
    keda_lag_query,
    one_document,
)

EXAMPLE_FILES = ("hpa.yaml", "keda-scaledobject.yaml", "prometheus-adapter-rules.yaml")
SCALED_OBJECT_SPEC_FIELDS = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
TRIGGER_FIELDS = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
POSTGRESQL_TRIGGER_METADATA = {
    "query",
    "targetQueryValue",
    "activationTargetQueryValue",
    "connectionFromEnv",
    "host",
    "port",
    "userName",
    "dbName",
    "sslmode",
    "passwordFromEnv",
}
POSTGRESQL_AUTHENTICATION_PARAMETERS = {"connection", "password", "host", "port", "userName", "dbName", "sslmode"}


def example_group_name() -> str:
    name = load_example("consumer-group.yaml")["metadata"]["name"]
    assert isinstance(name, str)
    return name


def targets_example_group(reference: dict[str, Any]) -> bool:
    return reference == {"apiVersion": API_VERSION, "kind": "ConsumerGroup", "name": example_group_name()}


def test_every_autoscaling_example_is_listed_and_parses() -> None:
    assert sorted(path.name for path in AUTOSCALING_DIRECTORY.glob("*.yaml")) == sorted(EXAMPLE_FILES)
    for file_name in EXAMPLE_FILES:
        assert autoscaling_documents(file_name), file_name


def test_hpa_targets_the_consumer_group_and_stops_at_its_partitions() -> None:
    autoscaler = one_document("hpa.yaml", "HorizontalPodAutoscaler")
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    spec = autoscaler["spec"]
    assert targets_example_group(spec["scaleTargetRef"])
    assert spec["maxReplicas"] == example_stream_partitions()
    assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
    (metric,) = spec["metrics"]
    assert metric["type"] == "Object"
    assert targets_example_group(metric["object"]["describedObject"])
    assert metric["object"]["metric"]["name"] == "sluice_consumer_group_lag_events"
    assert metric["object"]["target"]["type"] == "AverageValue"


def test_scaled_object_targets_the_consumer_group_and_stops_at_its_partitions() -> None:
    scaled_object = one_document("keda-scaledobject.yaml", "ScaledObject")
    assert scaled_object["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled_object["spec"]
    assert set(spec) <= SCALED_OBJECT_SPEC_FIELDS
    assert targets_example_group(spec["scaleTargetRef"])
    assert spec["maxReplicaCount"] == example_stream_partitions()
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert set(trigger) <= TRIGGER_FIELDS
    assert trigger["type"] == "postgresql"
    metadata = trigger["metadata"]
    assert set(metadata) <= POSTGRESQL_TRIGGER_METADATA
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA's metadata is a map of strings"
    assert float(metadata["targetQueryValue"]) > 0


def test_scaled_object_query_is_the_tested_lag_query_for_the_example_group() -> None:
    (trigger,) = one_document("keda-scaledobject.yaml", "ScaledObject")["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    assert query == keda_lag_query()
    stream_name = load_example("event-stream.yaml")["metadata"]["name"]
    assert f"s.name = '{stream_name}' AND g.name = '{example_group_name()}'" in query
    schema = load_example("event-stream.yaml")["spec"]["database"]["schema"]
    assert set(re.findall(r"(?:FROM|JOIN) ([a-z_]+)\.", query)) == {schema}


def test_trigger_authentication_reads_the_database_secret() -> None:
    authentication = one_document("keda-scaledobject.yaml", "TriggerAuthentication")
    (trigger,) = one_document("keda-scaledobject.yaml", "ScaledObject")["spec"]["triggers"]
    assert trigger["authenticationRef"] == {"name": authentication["metadata"]["name"]}
    secret = load_example("database-secret.yaml")
    assert set(authentication["spec"]) == {"secretTargetRef"}
    (reference,) = authentication["spec"]["secretTargetRef"]
    assert reference["parameter"] in POSTGRESQL_AUTHENTICATION_PARAMETERS
    assert reference == {"parameter": "connection", "name": secret["metadata"]["name"], "key": "uri"}
    assert "uri" in secret["stringData"]


@pytest.mark.parametrize("gauge", [CONSUMER_GROUP_LAG_EVENTS, CONSUMER_GROUP_LAG_SECONDS], ids=["events", "seconds"])
def test_prometheus_adapter_rules_serve_the_operator_gauges(gauge: Any) -> None:
    (configuration,) = autoscaling_documents("prometheus-adapter-rules.yaml")
    (series_name,) = [metric.name for metric in gauge.describe()]
    (rule,) = [rule for rule in configuration["rules"] if rule["seriesQuery"].startswith(series_name + "{")]
    overrides = rule["resources"]["overrides"]
    assert overrides["namespace"] == {"resource": "namespace"}
    (group_label,) = [label for label in overrides if label != "namespace"]
    assert overrides[group_label] == {"group": "sluice.dev", "resource": "consumergroups"}
    # The gauge has exactly these labels: labels() refuses any other set.
    child_labels = {"namespace": "probe", group_label: "probe"}
    gauge.labels(**child_labels)
    gauge.remove(*child_labels.values())
    exposed = re.sub(rule["name"]["matches"], rule["name"]["as"].replace("${1}", r"\1"), series_name)
    assert exposed == series_name.replace("sluice_operator_", "sluice_")


def test_hpa_asks_for_the_metric_the_adapter_exposes() -> None:
    (configuration,) = autoscaling_documents("prometheus-adapter-rules.yaml")
    exposed = {
        re.sub(rule["name"]["matches"], rule["name"]["as"].replace("${1}", r"\1"), rule["seriesQuery"].split("{")[0])
        for rule in configuration["rules"]
    }
    (metric,) = one_document("hpa.yaml", "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert metric["object"]["metric"]["name"] in exposed


@pytest.mark.kubernetes  # helm comes from the control-plane build
def test_chart_service_monitor_keeps_the_lag_gauges_namespace_label() -> None:
    """Prometheus would rename the gauges' own ``namespace`` label to ``exported_namespace`` (the operator's
    namespace is the target's); the rules above map ``namespace``, so the chart's ServiceMonitor honours it."""
    helm = build_control_plane_binaries(REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh") / "helm"
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "sluice",
            str(REPOSITORY_ROOT / "charts" / "sluice"),
            "--set",
            "serviceMonitor.enabled=true",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (monitor,) = [
        document for document in yaml.safe_load_all(rendered) if document and document["kind"] == "ServiceMonitor"
    ]
    (operator_endpoint,) = [endpoint for endpoint in monitor["spec"]["endpoints"] if endpoint["port"] == "metrics"]
    assert operator_endpoint["honorLabels"] is True
