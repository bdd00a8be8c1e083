"""The chart's KEDA ScaledObjects for ConsumerGroups (values ``keda.scaledObjects``): what they render to is the
shipped example (examples/autoscaling/keda-scaledobject.yaml) for the example group, the query is keda_lag.sql
word for word, explicit zeros are kept, and values that could break out of the SQL literals are refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice_devkit.control_plane import build_control_plane_binaries
from tests.custom_resources.manifests import REPOSITORY_ROOT
from tests.examples.autoscaling import keda_lag_query, one_document

pytestmark = pytest.mark.kubernetes  # helm comes from the control-plane build

CHART = REPOSITORY_ROOT / "charts" / "sluice"
BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh"
EXAMPLE_ENTRY = {"consumerGroup": "email-notifications", "stream": "orders", "namespace": "shop", "maxReplicaCount": 4}


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_control_plane_binaries(BUILD_SCRIPT) / "helm"


def render_keda(helm: Path, *entries: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(helm),
            "template",
            "sluice",
            str(CHART),
            "--namespace=sluice-system",
            f"--set-json=keda.scaledObjects={json.dumps(list(entries))}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def keda_documents(helm: Path, *entries: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = render_keda(helm, *entries)
    assert result.returncode == 0, result.stderr
    documents = [document for document in yaml.safe_load_all(result.stdout) if document]
    return {document["kind"]: document for document in documents if document["apiVersion"] == "keda.sh/v1alpha1"}


def test_no_scaled_object_by_default(helm: Path) -> None:
    assert keda_documents(helm) == {}


def test_the_example_group_renders_to_the_shipped_example(helm: Path) -> None:
    rendered = keda_documents(helm, EXAMPLE_ENTRY)
    scaled_object = rendered["ScaledObject"]
    example = one_document("keda-scaledobject.yaml", "ScaledObject")
    assert scaled_object["metadata"]["namespace"] == "shop"
    assert scaled_object["metadata"]["name"] == example["metadata"]["name"]
    trigger = scaled_object["spec"]["triggers"][0]
    example_trigger = example["spec"]["triggers"][0]
    assert trigger["metadata"]["query"] == keda_lag_query()
    assert trigger["metadata"] == example_trigger["metadata"]
    assert trigger["type"] == example_trigger["type"] == "postgresql"
    assert {key: value for key, value in scaled_object["spec"].items() if key != "triggers"} == {
        key: value for key, value in example["spec"].items() if key != "triggers"
    }
    authentication = rendered["TriggerAuthentication"]
    assert trigger["authenticationRef"]["name"] == authentication["metadata"]["name"]
    assert authentication["spec"] == one_document("keda-scaledobject.yaml", "TriggerAuthentication")["spec"]


def test_explicit_zeros_are_kept(helm: Path) -> None:
    entry = {**EXAMPLE_ENTRY, "minReplicaCount": 0, "cooldownPeriod": 0, "scaleDownStabilizationSeconds": 0}
    spec = keda_documents(helm, entry)["ScaledObject"]["spec"]
    assert (spec["minReplicaCount"], spec["cooldownPeriod"]) == (0, 0)
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"stream": "orders' OR '1'='1"},
        {"consumerGroup": "Email"},
        {"schema": "sluice; drop"},
        {"maxReplicaCount": 0},
        {"unknownKey": 1},
    ],
)
def test_values_that_could_break_the_query_or_are_unknown_are_refused(helm: Path, change: dict[str, Any]) -> None:
    result = render_keda(helm, {**EXAMPLE_ENTRY, **change})
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
