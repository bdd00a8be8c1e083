"""Fixtures of the examples' tests: the session's one control plane and the operator running as a process for
a namespace of the test's own (shared with tests/kopf_operator and tests/custom_resources, not started again)."""

from __future__ import annotations

from tests.kopf_operator.conftest import kubernetes_cluster, operator_namespace, running_operator, sluice_crds

__all__ = ["kubernetes_cluster", "operator_namespace", "running_operator", "sluice_crds"]
