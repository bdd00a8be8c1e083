"""Typed helpers over the kubernetes client and kubectl, for the tests that run against the local control plane.

The kubernetes client returns custom objects as untyped JSON (``object``); these helpers check the shape once
and hand back ``Manifest`` dictionaries, and turn the API server's rejections into their readable message.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes.client import (
    ApiClient,
    ApiextensionsV1Api,
    AutoscalingV2Api,
    CoreV1Api,
    CustomObjectsApi,
    V1Namespace,
    V1ObjectMeta,
    V2HorizontalPodAutoscaler,
    V2HorizontalPodAutoscalerCondition,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.config import new_client_from_config

from sluice_operator.models import CUSTOM_RESOURCES, GROUP, VERSION

Manifest = dict[str, Any]
"""A Kubernetes object as JSON."""

PLURALS = {resource.definition.kind: resource.definition.plural for resource in CUSTOM_RESOURCES}
FIELD_MANAGER = "sluice-tests"
KUBECTL_TIMEOUT_SECONDS = 60


def as_manifest(value: object) -> Manifest:
    """The client's untyped answer, checked to be a JSON object."""
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise TypeError(f"expected a JSON object from the API server, got {type(value).__name__}")
    return value


T = TypeVar("T")


def wait_until(read: Callable[[], T], done: Callable[[T], bool], *, timeout_seconds: float, interval: float = 0.5) -> T:
    """Call ``read`` until ``done`` holds for its answer; fail with the last answer after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout_seconds} s; last value: {value!r}")
        time.sleep(interval)


def api_client_for(kubeconfig_path: Path) -> ApiClient:
    """An API client for a kubeconfig (the one call into the client's untyped configuration loader)."""
    api_client: ApiClient = new_client_from_config(config_file=str(kubeconfig_path))  # type: ignore[no-untyped-call]
    return api_client


@dataclass(frozen=True)
class KubernetesCluster:
    """One running local control plane: its kubeconfig, the folder of its binaries and an API client."""

    kubeconfig_path: Path
    bin_directory: Path
    api_client: ApiClient

    def close(self) -> None:
        """Close the API client's connection pool."""
        self.api_client.close()  # type: ignore[no-untyped-call]

    def kubectl(
        self, *arguments: str, namespace: str | None = None, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the kubectl built with the control plane against it; fail with its output unless ``check=False``."""
        command = [str(self.bin_directory / "kubectl"), f"--kubeconfig={self.kubeconfig_path}"]
        if namespace is not None:
            command.append(f"--namespace={namespace}")
        command.extend(arguments)
        completed = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_SECONDS, check=False
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(arguments)} exited with {completed.returncode}:\n"
                f"{completed.stdout}\n{completed.stderr}"
            )
        return completed

    # Namespaces --------------------------------------------------------------------------------------------

    def create_namespace(self, name: str) -> None:
        CoreV1Api(self.api_client).create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))

    def delete_namespace(self, name: str) -> None:
        """Start deleting; the namespace controller finishes in the background."""
        CoreV1Api(self.api_client).delete_namespace(name)

    # CustomResourceDefinitions -----------------------------------------------------------------------------

    def custom_resource_definition_conditions(self, name: str) -> dict[str, str]:
        """Condition type → status of one CRD (Established, NamesAccepted, ...)."""
        definition = ApiextensionsV1Api(self.api_client).read_custom_resource_definition(name)
        conditions = definition.status.conditions if definition.status is not None else None
        return {condition.type: condition.status for condition in conditions or []}

    def custom_resource_definition_generation(self, name: str) -> int:
        definition = ApiextensionsV1Api(self.api_client).read_custom_resource_definition(name)
        generation = definition.metadata.generation if definition.metadata is not None else None
        if generation is None:
            raise AssertionError(f"{name} has no metadata.generation")
        return generation

    # Sluice objects ----------------------------------------------------------------------------------------

    def create(self, namespace: str, manifest: Mapping[str, Any], *, dry_run: bool = False) -> Manifest:
        """Create a sluice.dev object (``dry_run`` validates it fully without storing it)."""
        return as_manifest(
            CustomObjectsApi(self.api_client).create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURALS[manifest["kind"]],
                dict(manifest),
                dry_run="All" if dry_run else None,
                field_validation="Strict",
            )
        )

    def get(self, namespace: str, kind: str, name: str) -> Manifest:
        return as_manifest(
            CustomObjectsApi(self.api_client).get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name
            )
        )

    def merge_patch(self, namespace: str, kind: str, name: str, patch: Mapping[str, Any]) -> Manifest:
        """A JSON merge patch of the object's spec or metadata."""
        return as_manifest(
            CustomObjectsApi(self.api_client).patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURALS[kind],
                name,
                dict(patch),
                _content_type="application/merge-patch+json",
            )
        )

    def merge_patch_status(self, namespace: str, kind: str, name: str, status: Mapping[str, Any]) -> Manifest:
        """A JSON merge patch through the status subresource, as the operator writes status."""
        return as_manifest(
            CustomObjectsApi(self.api_client).patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURALS[kind],
                name,
                {"status": dict(status)},
                _content_type="application/merge-patch+json",
            )
        )

    def get_scale(self, namespace: str, kind: str, name: str) -> Manifest:
        """The object's /scale subresource (an autoscaling/v1 Scale)."""
        return as_manifest(
            CustomObjectsApi(self.api_client).get_namespaced_custom_object_scale(
                GROUP, VERSION, namespace, PLURALS[kind], name
            )
        )

    # HorizontalPodAutoscalers ------------------------------------------------------------------------------

    def create_horizontal_pod_autoscaler(self, namespace: str, manifest: Mapping[str, Any]) -> None:
        body = V2HorizontalPodAutoscaler.from_dict(dict(manifest))
        if body is None:
            raise ValueError("empty HorizontalPodAutoscaler manifest")
        AutoscalingV2Api(self.api_client).create_namespaced_horizontal_pod_autoscaler(namespace, body)

    def horizontal_pod_autoscaler_conditions(
        self, namespace: str, name: str
    ) -> dict[str, V2HorizontalPodAutoscalerCondition]:
        """Condition type → condition (AbleToScale, ScalingActive, ScalingLimited) of one HPA."""
        autoscaler = AutoscalingV2Api(self.api_client).read_namespaced_horizontal_pod_autoscaler_status(name, namespace)
        conditions = autoscaler.status.conditions if autoscaler.status is not None else None
        return {condition.type: condition for condition in conditions or []}


def rejection_message(request: Callable[[], object]) -> str:
    """Run a request the API server must refuse as invalid (422) and return the message it gives."""
    try:
        request()
    except ApiException as error:
        body = json.loads(error.body or "{}")
        if error.status != 422:
            raise AssertionError(f"expected 422 Unprocessable Entity, got {error.status}: {error.body}") from error
        message = body.get("message")
        if not isinstance(message, str):
            raise AssertionError(f"the rejection has no message: {error.body}") from error
        return message
    raise AssertionError("the API server accepted a request it should have refused")


def parse_table(output: str) -> list[dict[str, str]]:
    """kubectl's table output as one dictionary per row, cut at the header's column starts (cells may be empty)."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = lines[0]
    starts = [
        index
        for index, character in enumerate(header)
        if character != " " and (index == 0 or header[max(0, index - 2) : index] == "  ")
    ]
    names = [header[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
    return [
        {name: line[start:end].strip() for name, start, end in zip(names, starts, [*starts[1:], None], strict=True)}
        for line in lines[1:]
    ]


class SharedControlPlane:
    """One control plane for the whole test session, however many conftest files define the fixture.

    tests/custom_resources and tests/kopf_operator both offer ``kubernetes_cluster``; pytest makes one session
    fixture per directory, so both acquire this process-wide instance: the first starts it, the last stops it.
    """

    def __init__(self) -> None:
        self._users = 0
        self._cluster: KubernetesCluster | None = None
        self._stop: Callable[[], None] | None = None

    def acquire(self, start: Callable[[], tuple[KubernetesCluster, Callable[[], None]]]) -> KubernetesCluster:
        if self._cluster is None:
            self._cluster, self._stop = start()
        self._users += 1
        return self._cluster

    def release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._stop is not None:
            stop, self._stop, self._cluster = self._stop, None, None
            stop()


SHARED_CONTROL_PLANE = SharedControlPlane()
