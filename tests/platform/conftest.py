"""Fixtures of the local platform's tests: the session's control plane and CRDs, shared with
tests/custom_resources and tests/kopf_operator (one control plane per session)."""

from __future__ import annotations

from tests.custom_resources.conftest import kubernetes_cluster, namespace, sluice_crds

__all__ = ["kubernetes_cluster", "namespace", "sluice_crds"]
