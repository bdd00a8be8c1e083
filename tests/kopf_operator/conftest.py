"""Fixtures of the operator's tests: the session's control plane (shared with tests/custom_resources), a
namespace per test holding the database Secret, and the operator running as a process for that namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.custom_resources.cluster import KubernetesCluster
from tests.custom_resources.conftest import kubernetes_cluster, sluice_crds
from tests.kopf_operator.operator_process import OperatorProcess

__all__ = ["kubernetes_cluster", "operator_namespace", "running_operator", "sluice_crds"]

DATABASE_SECRET = "sluice-database"


@pytest.fixture
def operator_namespace(
    kubernetes_cluster: KubernetesCluster, sluice_crds: list[str], postgres_dsn: str
) -> Iterator[str]:
    """A fresh namespace whose ``sluice-database`` Secret points at this test's database."""
    name = f"operator-{uuid.uuid4().hex[:8]}"
    kubernetes_cluster.create_namespace(name)
    kubernetes_cluster.kubectl(
        "create", "secret", "generic", DATABASE_SECRET, f"--from-literal=uri={postgres_dsn}", namespace=name
    )
    yield name
    kubernetes_cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture
def running_operator(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, postgres_dsn: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator, as a process, watching the test's namespace; its log is printed when the test fails."""
    operator = OperatorProcess(
        kubeconfig_path=kubernetes_cluster.kubeconfig_path,
        namespace=operator_namespace,
        default_dsn=postgres_dsn,
        log_path=tmp_path / "operator.log",
    )
    with operator:
        yield operator
    print("operator log:\n" + operator.log_tail(200))  # shown by pytest for failing tests
