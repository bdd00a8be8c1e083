"""Deployments and Jobs for the kinds that run pods (ConsumerGroup, Projection, Replay), and what their
status says about availability.

The container runs ``sluice <command> ...``; the database comes from environment variables
(``sluice_operator.reconcile.databases``). A ConsumerGroup's ``podTemplate`` overrides are merged into the
generated Pod template last: maps are merged key by key, containers by name, other lists replaced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluice_operator.models.common import ConditionStatus
from sluice_operator.reconcile.conditions import DesiredCondition
from sluice_operator.reconcile.ownership import Owner, child_labels, owner_reference, selector_labels

__all__ = [
    "CONTAINER_NAME",
    "HTTP_PORT",
    "WORKLOAD_AVAILABLE",
    "ContainerSpec",
    "WorkloadState",
    "deployment_manifest",
    "deployment_state",
    "job_manifest",
    "merge_pod_template",
    "workload_available",
]

CONTAINER_NAME = "sluice"
HTTP_PORT = 8080
WORKLOAD_AVAILABLE = "WorkloadAvailable"


@dataclass(frozen=True)
class ContainerSpec:
    """The one container of a workload's pods."""

    image: str
    arguments: Sequence[str]
    environment: Sequence[Mapping[str, Any]]
    resources: Mapping[str, Any] | None = None
    http_probes: bool = True
    """Whether the command serves /health/live and /health/ready on HTTP_PORT."""

    def to_manifest(self) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": CONTAINER_NAME,
            "image": self.image,
            "command": ["sluice"],
            "args": list(self.arguments),
            "env": [dict(variable) for variable in self.environment],
        }
        if self.resources:
            container["resources"] = dict(self.resources)
        if self.http_probes:
            container["ports"] = [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}]
            container["livenessProbe"] = {"httpGet": {"path": "/health/live", "port": "http"}, "periodSeconds": 10}
            container["readinessProbe"] = {"httpGet": {"path": "/health/ready", "port": "http"}, "periodSeconds": 5}
        return container


def merge_pod_template(generated: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``overrides`` merged into ``generated``: maps key by key, ``containers`` by name, other lists replaced."""
    merged = copy.deepcopy(dict(generated))
    if not overrides:
        return merged
    for key, value in overrides.items():
        current = merged.get(key)
        if key in ("containers", "initContainers") and isinstance(current, list) and isinstance(value, list):
            merged[key] = _merge_named(current, value)
        elif isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = merge_pod_template(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_named(current: list[Any], overrides: list[Any]) -> list[Any]:
    result = copy.deepcopy(current)
    for override in overrides:
        name = override.get("name") if isinstance(override, Mapping) else None
        index = next(
            (i for i, item in enumerate(result) if isinstance(item, Mapping) and item.get("name") == name), None
        )
        if index is None or not isinstance(override, Mapping):
            result.append(copy.deepcopy(override))
        else:
            result[index] = merge_pod_template(result[index], override)
    return result


def _pod_template(owner: Owner, container: ContainerSpec, restart_policy: str | None) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [container.to_manifest()]}
    if restart_policy is not None:
        pod_spec["restartPolicy"] = restart_policy
    return {"metadata": {"labels": child_labels(owner)}, "spec": pod_spec}


def _metadata(owner: Owner, namespace: str) -> dict[str, Any]:
    return {
        "name": owner.name,
        "namespace": namespace,
        "labels": child_labels(owner),
        "ownerReferences": [owner_reference(owner)],
    }


def deployment_manifest(
    owner: Owner,
    namespace: str,
    *,
    replicas: int,
    container: ContainerSpec,
    pod_template_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Deployment named after its owner, running ``replicas`` pods of ``container``."""
    template = merge_pod_template(_pod_template(owner, container, None), pod_template_overrides)
    # The selector labels must stay on the pods whatever the overrides say, or the Deployment is invalid.
    template.setdefault("metadata", {}).setdefault("labels", {}).update(selector_labels(owner))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(owner)},
            "template": template,
        },
    }


def job_manifest(owner: Owner, namespace: str, *, container: ContainerSpec, backoff_limit: int = 3) -> dict[str, Any]:
    """A Job named after its owner, running ``container`` once to completion."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(owner, namespace),
        "spec": {
            "backoffLimit": backoff_limit,
            "template": _pod_template(owner, container, "OnFailure"),
        },
    }


@dataclass(frozen=True)
class WorkloadState:
    """What a Deployment's status says."""

    exists: bool
    replicas: int = 0
    ready_replicas: int = 0
    available: bool = False
    available_message: str = ""


def deployment_state(deployment: Mapping[str, Any] | None) -> WorkloadState:
    """Read a Deployment (as JSON) into a WorkloadState; None means it does not exist."""
    if deployment is None:
        return WorkloadState(exists=False)
    status = deployment.get("status") or {}
    conditions = {condition.get("type"): condition for condition in status.get("conditions") or []}
    available = conditions.get("Available", {})
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    return WorkloadState(
        exists=True,
        replicas=int(status.get("replicas") or 0),
        ready_replicas=ready,
        available=available.get("status") == "True" and ready >= min(desired, 1),
        available_message=str(available.get("message") or ""),
    )


def workload_available(state: WorkloadState, desired_replicas: int) -> DesiredCondition:
    """WorkloadAvailable: the Deployment exists and at least one of its pods is ready (when any is wanted)."""
    if not state.exists:
        return DesiredCondition(WORKLOAD_AVAILABLE, ConditionStatus.FALSE, "DeploymentMissing", "creating it")
    if desired_replicas == 0:
        return DesiredCondition(WORKLOAD_AVAILABLE, ConditionStatus.TRUE, "ScaledToZero", "no replicas wanted")
    if state.available:
        return DesiredCondition(
            WORKLOAD_AVAILABLE,
            ConditionStatus.TRUE,
            "MinimumReplicasAvailable",
            f"{state.ready_replicas} of {desired_replicas} replicas ready",
        )
    return DesiredCondition(
        WORKLOAD_AVAILABLE,
        ConditionStatus.FALSE,
        "ReplicasNotReady",
        f"{state.ready_replicas} of {desired_replicas} replicas ready",
    )
