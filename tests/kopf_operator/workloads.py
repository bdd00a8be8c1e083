"""Reading and nudging the Deployments the operator creates, and acting as the kubelet (which the test
control plane does not have) by marking their pods Running and Ready."""

from __future__ import annotations

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
