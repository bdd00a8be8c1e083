"""Standing in for the kubelet: the pods the operator asked for run as local processes.

The local control plane has no kubelet, so nothing would run the pods of the operator's Deployments. For
each pod, the platform starts the pod's container command with exactly the pod's arguments and environment
(Secret keys and the pod name resolved as a kubelet resolves them); the one addition is ``SLUICE_HTTP_PORT``,
because local processes share one network namespace. Once the process answers ``/health/ready`` (the pod's
readiness probe), the stand-in reports the pod Running and Ready through the status subresource, which is
the only part of a kubelet's job it does.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice_devkit.free_ports import free_loopback_ports
from sluice_devkit.kubectl import Kubectl
from sluice_devkit.local_processes import LocalProcess
from sluice_devkit.platform_errors import PlatformError
from sluice_operator.reconcile.workloads import CONTAINER_NAME

__all__ = [
    "PodProcess",
    "free_loopback_port",
    "pod_environment",
    "pods_of_deployment",
    "report_pod_ready",
    "resolve_command",
    "sluice_container",
    "start_pod_processes",
    "wait_for_pods",
    "wait_until_ready",
]

READINESS_TIMEOUT_SECONDS = 60.0
POLL_INTERVAL_SECONDS = 0.2
POD_READY_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")


def free_loopback_port() -> int:
    """A TCP port that nothing listens on right now, which no outgoing connection can take (see free_ports)."""
    return free_loopback_ports(1)[0]


@dataclass
class PodProcess:
    """One pod and the local process running its container."""

    pod_name: str
    process: LocalProcess
    http_port: int


def resolve_command(name: str) -> str:
    """A container's command as a local program: this Python's scripts first (the ``sluice`` CLI), then PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise PlatformError(f"the pods run {name!r}, which is neither beside {sys.executable} nor on PATH")
    return found


def _secret_value(kubectl: Kubectl, namespace: str, reference: Mapping[str, Any]) -> str:
    secret = kubectl.get_json("secret", str(reference["name"]), namespace=namespace)
    key = str(reference["key"])
    encoded = (secret.get("data") or {}).get(key)
    if encoded is None:
        raise PlatformError(f"Secret {reference['name']!r} has no key {key!r}")
    return base64.b64decode(encoded).decode()


def pod_environment(kubectl: Kubectl, pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment as a kubelet resolves it: values, Secret keys, the pod's name and namespace."""
    namespace = str(pod["metadata"]["namespace"])
    environment: dict[str, str] = {}
    for variable in container.get("env") or []:
        name = str(variable["name"])
        if "value" in variable:
            environment[name] = str(variable["value"])
            continue
        source = variable.get("valueFrom") or {}
        if "secretKeyRef" in source:
            environment[name] = _secret_value(kubectl, namespace, source["secretKeyRef"])
        elif "fieldRef" in source and source["fieldRef"].get("fieldPath") == "metadata.name":
            environment[name] = str(pod["metadata"]["name"])
        elif "fieldRef" in source and source["fieldRef"].get("fieldPath") == "metadata.namespace":
            environment[name] = namespace
        else:
            raise PlatformError(f"environment variable {name!r} of pod {pod['metadata']['name']}: unsupported source")
    return environment


def pods_of_deployment(kubectl: Kubectl, namespace: str, deployment_name: str) -> list[dict[str, Any]]:
    """The Deployment's current pods (not being deleted), by its selector."""
    deployment = kubectl.get_json("deployment", deployment_name, namespace=namespace)
    labels = deployment["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    pods = kubectl.get_json("pods", "--selector", selector, namespace=namespace)["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def wait_for_pods(
    kubectl: Kubectl, namespace: str, deployment_name: str, *, count: int, timeout_seconds: float
) -> list[dict[str, Any]]:
    """Wait until the Deployment has ``count`` pods (the controller manager creates them)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            pods = pods_of_deployment(kubectl, namespace, deployment_name)
        except PlatformError:
            pods = []  # the Deployment does not exist yet
        if len(pods) >= count:
            return sorted(pods, key=lambda pod: str(pod["metadata"]["name"]))[:count]
        if time.monotonic() > deadline:
            raise PlatformError(f"Deployment {deployment_name!r} did not get {count} pods in {timeout_seconds:.0f} s")
        time.sleep(0.5)


def _wait_until_ready(pod_process: PodProcess) -> None:
    url = f"http://127.0.0.1:{pod_process.http_port}/health/ready"
    deadline = time.monotonic() + READINESS_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        exit_code = pod_process.process.exit_code()
        if exit_code is not None:
            raise PlatformError(
                f"the process of pod {pod_process.pod_name} exited with {exit_code}:\n{pod_process.process.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(POLL_INTERVAL_SECONDS)
    raise PlatformError(f"pod {pod_process.pod_name} did not answer {url} in {READINESS_TIMEOUT_SECONDS:.0f} s")


def report_pod_ready(kubectl: Kubectl, pod: Mapping[str, Any]) -> None:
    """What a kubelet writes once the container runs and passes its readiness probe."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "phase": "Running",
        "startTime": now,
        "podIP": "127.0.0.1",
        "conditions": [
            {"type": condition, "status": "True", "lastTransitionTime": now} for condition in POD_READY_CONDITIONS
        ],
    }
    kubectl.patch_status("pod", str(pod["metadata"]["name"]), status, namespace=str(pod["metadata"]["namespace"]))


def sluice_container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod's ``sluice`` container (a podTemplate may add others, which the platform does not run)."""
    for container in pod["spec"]["containers"]:
        if container.get("name") == CONTAINER_NAME:
            found: Mapping[str, Any] = container
            return found
    raise PlatformError(f"pod {pod['metadata']['name']} has no container named {CONTAINER_NAME!r}")


def start_pod_processes(
    kubectl: Kubectl,
    pods: Sequence[Mapping[str, Any]],
    *,
    log_directory: Path,
    into: list[PodProcess],
    consumer_id_suffix: str = "",
) -> None:
    """Start every pod's (single) container as a local process, appending each to ``into`` as it starts.

    The caller owns ``into`` and stops what it holds in every case, so nothing is left running when a later
    pod fails to start. ``consumer_id_suffix`` is appended to ``SLUICE_CONSUMER_ID`` (used next to a real
    cluster, whose own pods have the pods' names as consumer ids).
    """
    # The host's own SLUICE_* settings must not reach the workers: they get the pod's environment only.
    host_environment = {name: value for name, value in os.environ.items() if not name.startswith("SLUICE_")}
    for pod in pods:
        container = sluice_container(pod)
        http_port = free_loopback_port()
        environment = {
            **host_environment,
            **pod_environment(kubectl, pod, container),
            "SLUICE_HTTP_PORT": str(http_port),
        }
        if consumer_id_suffix and "SLUICE_CONSUMER_ID" in environment:
            environment["SLUICE_CONSUMER_ID"] += consumer_id_suffix
        command = [resolve_command(container["command"][0]), *container["command"][1:], *container.get("args", [])]
        pod_name = str(pod["metadata"]["name"])
        process = LocalProcess(
            pod_name, command, log_path=log_directory / f"pod-{pod_name}.log", environment=environment
        )
        process.start()
        into.append(PodProcess(pod_name=pod_name, process=process, http_port=http_port))


def wait_until_ready(
    kubectl: Kubectl, pods: Sequence[Mapping[str, Any]], processes: Sequence[PodProcess], *, report_ready: bool
) -> None:
    """Wait for each process's readiness endpoint; then, acting as the kubelet, report its pod Ready."""
    by_name = {str(pod["metadata"]["name"]): pod for pod in pods}
    for pod_process in processes:
        _wait_until_ready(pod_process)
        if report_ready:
            report_pod_ready(kubectl, by_name[pod_process.pod_name])
