"""What the controllers need from Kubernetes: the seam between the reconcilers and the API server.

``KubernetesApi`` (``sluice_operator.kubernetes_api``) is the one implementation the operator runs with; the
controller tests (tests/operator_controllers) pass an in-memory one. Both speak JSON dictionaries:

- a missing object reads as None (``get_custom_object``, ``read_secret_data``), never as an error;
- ``patch_status`` is a JSON merge patch of ``status`` and does nothing when the object is gone;
- ``apply_deployment`` and ``apply_job`` are server-side applies that return the child as stored, status
  included;
- any other failure of the API server propagates (the reconcile fails and is retried).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["KubernetesPort", "Manifest"]

Manifest = dict[str, Any]


class KubernetesPort(Protocol):
    """The Kubernetes API calls the reconcilers make."""

    async def get_custom_object(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """One Sluice object, or None when it does not exist."""
        ...

    async def list_custom_objects(self, kind: str, namespace: str | None) -> list[Manifest]:
        """Objects of one kind in a namespace, or in every namespace when ``namespace`` is None."""
        ...

    async def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into the object's status (a JSON merge patch; lists are replaced whole)."""
        ...

    async def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data, decoded; None when the Secret does not exist."""
        ...

    async def apply_deployment(self, manifest: Mapping[str, Any]) -> Manifest:
        """Create or update a Deployment; returns it as stored, with its status."""
        ...

    async def apply_job(self, manifest: Mapping[str, Any]) -> Manifest:
        """Create a Job, or apply it again; returns it as stored, with its status."""
        ...

    async def close(self) -> None:
        """Release the connection (once, when the operator stops)."""
        ...
