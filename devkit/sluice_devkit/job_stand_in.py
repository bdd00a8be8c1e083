"""Standing in for the kubelet for a Job: run its pod's container to completion as a local process, then
report the pod Succeeded (or Failed) through the status subresource, so the controller manager's Job
controller completes the Job, and the operator the object that owns it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice_devkit.kubectl import Kubectl
from sluice_devkit.kubelet_stand_in import PodProcess, start_pod_processes
from sluice_devkit.platform_errors import PlatformError

__all__ = ["pods_of_job", "report_pod_finished", "run_job_pod"]

POLL_INTERVAL_SECONDS = 0.5


def pods_of_job(kubectl: Kubectl, namespace: str, job_name: str) -> list[dict[str, Any]]:
    """The Job's current pods (the controller manager creates them), not being deleted."""
    job = kubectl.get_json("job", job_name, namespace=namespace)
    labels = job["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    pods = kubectl.get_json("pods", "--selector", selector, namespace=namespace)["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def report_pod_finished(kubectl: Kubectl, pod: Mapping[str, Any], exit_code: int) -> None:
    """What a kubelet writes once the pod's only container has exited."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": now,
        "finishedAt": now,
    }
    status = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "startTime": now,
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
            for container in pod["spec"]["containers"]
        ],
    }
    kubectl.patch_status("pod", str(pod["metadata"]["name"]), status, namespace=str(pod["metadata"]["namespace"]))


def run_job_pod(
    kubectl: Kubectl,
    namespace: str,
    job_name: str,
    *,
    log_directory: Path,
    into: list[PodProcess],
    timeout_seconds: float,
) -> tuple[dict[str, Any], int]:
    """Wait for the Job's pod, run its container here until it exits, and report the pod finished. Returns
    the pod and the exit code; the caller owns ``into`` (the process, to stop it in every case)."""
    deadline = time.monotonic() + timeout_seconds
    pods: list[dict[str, Any]] = []
    while not pods:
        try:
            pods = pods_of_job(kubectl, namespace, job_name)
        except PlatformError:
            pods = []  # the Job does not exist yet
        if not pods:
            if time.monotonic() > deadline:
                raise PlatformError(f"Job {job_name!r} got no pod in {timeout_seconds:.0f} s")
            time.sleep(POLL_INTERVAL_SECONDS)
    pod = pods[0]
    started: list[PodProcess] = []
    try:
        start_pod_processes(kubectl, [pod], log_directory=log_directory, into=started)
    finally:
        into.extend(started)
    process = started[0].process
    while (exit_code := process.exit_code()) is None:
        if time.monotonic() > deadline:
            raise PlatformError(f"the process of Job {job_name!r} did not finish in {timeout_seconds:.0f} s")
        time.sleep(POLL_INTERVAL_SECONDS)
    report_pod_finished(kubectl, pod, exit_code)
    return pod, exit_code
