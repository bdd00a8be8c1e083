"""The Helm chart without a cluster: helm lint, the generated parts current, values.yaml equal to the
documented defaults, and the generated values schema refusing typos and wrong types."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice_devkit.control_plane import build_control_plane_binaries
from sluice_operator import chart_generation
from sluice_operator.chart_values import ChartValues

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CHART = REPOSITORY_ROOT / "charts" / "sluice"
BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh"


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_control_plane_binaries(BUILD_SCRIPT) / "helm"


def helm_run(helm: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *arguments], capture_output=True, text=True, check=False)


def render(helm: Path, *settings: str) -> list[dict[str, Any]]:
    result = helm_run(helm, "template", "sluice", str(CHART), "--namespace", "sluice-system", *settings)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def test_generated_chart_files_are_current() -> None:
    assert chart_generation.main(["--check"]) == 0


def test_values_yaml_is_exactly_the_documented_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert ChartValues.model_validate(values).model_dump(by_alias=True) == ChartValues().model_dump(by_alias=True)
    assert ChartValues().model_dump(by_alias=True) == values


@pytest.mark.kubernetes  # helm comes from the control-plane build
def test_helm_lint_passes(helm: Path) -> None:
    result = helm_run(helm, "lint", "--strict", str(CHART), "--set", "gateway.enabled=true")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.kubernetes  # helm comes from the control-plane build
@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("operator.watchNamespace=shop", "watchNamespace"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("gateway.grpcPort=0", "grpcPort"),
        ("database.schema=Bad-Schema", "schema"),
    ],
)
def test_values_schema_refuses_typos_and_wrong_values(helm: Path, setting: str, complaint: str) -> None:
    result = helm_run(helm, "template", "sluice", str(CHART), "--set", setting)
    assert result.returncode != 0
    assert complaint in result.stderr


@pytest.mark.kubernetes  # helm comes from the control-plane build
def test_default_render_is_one_recreated_operator_with_least_privilege(helm: Path) -> None:
    documents = render(helm)
    kinds = sorted(document["kind"] for document in documents)
    assert kinds.count("CustomResourceDefinition") == 5
    (operator,) = [document for document in documents if document["kind"] == "Deployment"]
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsNonRoot"] is True
    roles = [document for document in documents if document["kind"] == "ClusterRole"]
    verbs_by_resource = {
        resource: set(rule["verbs"]) for role in roles for rule in role["rules"] for resource in rule["resources"]
    }
    assert verbs_by_resource["secrets"] == {"get"}
    assert "delete" not in verbs_by_resource["eventstreams"]
    assert "*" not in {verb for verbs in verbs_by_resource.values() for verb in verbs}
    crd = next(document for document in documents if document["kind"] == "CustomResourceDefinition")
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


@pytest.mark.kubernetes  # helm comes from the control-plane build
def test_watch_namespaces_bind_the_workload_role_only_there(helm: Path) -> None:
    documents = render(helm, "--set", "operator.watchNamespaces={shop,billing}")
    bindings = [document for document in documents if document["kind"] == "RoleBinding"]
    assert sorted(binding["metadata"]["namespace"] for binding in bindings) == ["billing", "shop"]
    cluster_bindings = [
        document["metadata"]["name"] for document in documents if document["kind"] == "ClusterRoleBinding"
    ]
    assert cluster_bindings == ["sluice-operator-discovery"]


@pytest.mark.kubernetes  # helm comes from the control-plane build
def test_gateway_toggle_adds_deployment_service_and_disruption_budget(helm: Path) -> None:
    kinds = [document["kind"] for document in render(helm, "--set", "gateway.enabled=true")]
    assert kinds.count("Deployment") == 2
    assert "PodDisruptionBudget" in kinds
    single = [document["kind"] for document in render(helm, "--set", "gateway.enabled=true,gateway.replicas=1")]
    assert "PodDisruptionBudget" not in single
    assert "CustomResourceDefinition" not in [
        document["kind"] for document in render(helm, "--set", "crds.install=false")
    ]


@pytest.mark.kubernetes  # helm comes from the control-plane build
def test_an_access_policy_config_map_is_mounted_where_the_gateway_reads_it(helm: Path) -> None:
    documents = render(helm, "--set", "gateway.enabled=true,gateway.accessPolicyConfigMapName=sluice-access")
    gateway = next(
        document
        for document in documents
        if document["kind"] == "Deployment" and "gateway" in document["metadata"]["name"]
    )
    pod = gateway["spec"]["template"]["spec"]
    container = pod["containers"][0]
    environment = {variable["name"]: variable.get("value") for variable in container["env"]}
    mount = next(mount for mount in container["volumeMounts"] if mount["name"] == "access-policy")
    volume = next(volume for volume in pod["volumes"] if volume["name"] == "access-policy")
    assert environment["SLUICE_ACCESS_POLICY_FILE"] == f"{mount['mountPath']}/policy.yaml"
    assert volume["configMap"]["name"] == "sluice-access"
    without = render(helm, "--set", "gateway.enabled=true")
    gateway = next(
        document
        for document in without
        if document["kind"] == "Deployment" and "gateway" in document["metadata"]["name"]
    )
    assert "SLUICE_ACCESS_POLICY_FILE" not in {
        variable["name"] for variable in gateway["spec"]["template"]["spec"]["containers"][0]["env"]
    }
