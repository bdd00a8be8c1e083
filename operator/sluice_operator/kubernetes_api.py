"""The operator's calls to the Kubernetes API: custom objects, their status, Secrets, Deployments and Jobs.

A thin typed layer over the ``kubernetes.aio`` client that speaks JSON dictionaries, so the reconcile
functions build plain manifests. Children are written with server-side apply (field manager
``sluice-operator``): applying the same manifest twice changes nothing, a missing child is created, and a
field the operator stops setting is removed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Self

from kubernetes.aio import client, config
from kubernetes.aio.client.exceptions import ApiException

from sluice_operator.kubernetes_port import Manifest
from sluice_operator.models import CUSTOM_RESOURCES, GROUP, VERSION

__all__ = ["FIELD_MANAGER", "KubernetesApi", "Manifest"]

FIELD_MANAGER = "sluice-operator"
PLURALS = {resource.definition.kind: resource.definition.plural for resource in CUSTOM_RESOURCES}
NOT_FOUND = 404


def _is_not_found(error: ApiException) -> bool:
    return bool(error.status == NOT_FOUND)


class KubernetesApi:
    """One API client for the operator's own reads and writes (kopf has its own connection for watching);
    the controllers see it as a ``KubernetesPort``."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api_client = api_client
        self._custom_objects = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)

    @classmethod
    async def connect(cls, kubeconfig_path: str | None = None) -> Self:
        """Use the in-cluster ServiceAccount when running in a pod, else the kubeconfig (``KUBECONFIG``)."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig_path, client_configuration=configuration
            )
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self._api_client.close()  # type: ignore[no-untyped-call]

    def _json(self, value: object) -> Manifest:
        serialized = self._api_client.sanitize_for_serialization(value)  # type: ignore[no-untyped-call]
        if not isinstance(serialized, dict):
            raise TypeError(f"expected a JSON object from the API server, got {type(serialized).__name__}")
        return serialized

    # Custom objects -------------------------------------------------------------------------------------

    async def get_custom_object(self, kind: str, namespace: str, name: str) -> Manifest | None:
        try:
            found = await self._custom_objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name
            )
        except ApiException as error:
            if _is_not_found(error):
                return None
            raise
        return self._json(found)

    async def list_custom_objects(self, kind: str, namespace: str | None) -> list[Manifest]:
        """Objects of one kind in a namespace, or in every namespace when ``namespace`` is None."""
        if namespace is None:
            listed = await self._custom_objects.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind])
        else:
            listed = await self._custom_objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind])
        items = self._json(listed).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    async def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A JSON merge patch of ``status`` (lists such as conditions are replaced whole)."""
        try:
            await self._custom_objects.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURALS[kind],
                name,
                {"status": dict(status)},
                _content_type="application/merge-patch+json",
            )
        except ApiException as error:
            if not _is_not_found(error):  # deleted meanwhile: nothing to report on
                raise

    # Secrets --------------------------------------------------------------------------------------------

    async def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data, decoded as UTF-8; None when the Secret does not exist."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if _is_not_found(error):
                return None
            raise
        encoded = secret.data or {}
        return {key: base64.b64decode(value).decode("utf-8", errors="replace") for key, value in encoded.items()}

    # Children -------------------------------------------------------------------------------------------

    async def apply_deployment(self, manifest: Mapping[str, Any]) -> Manifest:
        """Create or update a Deployment (server-side apply); returns it as stored, with its status."""
        metadata = manifest["metadata"]
        applied = await self._apps.patch_namespaced_deployment(
            metadata["name"],
            metadata["namespace"],
            dict(manifest),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        return self._json(applied)

    async def apply_job(self, manifest: Mapping[str, Any]) -> Manifest:
        """Create a Job, or apply it again (its pod template never changes: a Replay's spec is immutable)."""
        metadata = manifest["metadata"]
        applied = await self._batch.patch_namespaced_job(
            metadata["name"],
            metadata["namespace"],
            dict(manifest),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        return self._json(applied)
