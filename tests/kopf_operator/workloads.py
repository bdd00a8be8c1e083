"""Reading and nudging the Deployments and Jobs the operator creates, and acting as the kubelet (which the
test control plane does not have): resolving a container's environment as it would, and reporting pods
Running and Ready, or Succeeded."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

from tests.custom_resources.cluster import KubernetesCluster

NOT_FOUND = 404


def get_deployment(cluster: KubernetesCluster, namespace: str, name: str) -> dict[str, Any] | None:
    """The Deployment as JSON, or None."""
    try:
        deployment = AppsV1Api(cluster.api_client).read_namespaced_deployment(name, namespace)
    except ApiException as error:
        if error.status == NOT_FOUND:
            return None
        raise
    serialized: dict[str, Any] = cluster.api_client.sanitize_for_serialization(deployment)
    return serialized


def mark_pods_ready(cluster: KubernetesCluster, namespace: str, selector: str) -> int:
    """Do what a kubelet would: report every selected pod Running and Ready. Returns how many pods."""
    core = CoreV1Api(cluster.api_client)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    for pod in pods:
        status = {
            "phase": "Running",
            "startTime": now,
            "conditions": [
                {"type": condition, "status": "True", "lastTransitionTime": now}
                for condition in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
        }
        core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": status})
    return len(pods)


def mark_pods_succeeded(cluster: KubernetesCluster, namespace: str, selector: str) -> int:
    """Do what a kubelet would once a Job's container exits 0: report the pod Succeeded. Returns how many."""
    core = CoreV1Api(cluster.api_client)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    terminated = {"exitCode": 0, "reason": "Completed", "finishedAt": now, "startedAt": now}
    for pod in pods:
        status = {
            "phase": "Succeeded",
            "startTime": now,
            "containerStatuses": [
                {
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
                for container in pod.spec.containers
            ],
        }
        core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": status})
    return len(pods)


def pod_process_environment(
    cluster: KubernetesCluster, namespace: str, container: dict[str, Any], *, pod_name: str
) -> dict[str, str]:
    """The container's environment as a kubelet would resolve it (Secret keys, the pod name)."""
    environment: dict[str, str] = {}
    for variable in container.get("env") or []:
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
            continue
        source = variable["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name"
            environment[variable["name"]] = pod_name
        else:
            reference = source["secretKeyRef"]
            secret = cluster.kubectl(
                "get", "secret", reference["name"], "-o", f"jsonpath={{.data.{reference['key']}}}", namespace=namespace
            ).stdout
            environment[variable["name"]] = base64.b64decode(secret).decode()
    return environment
