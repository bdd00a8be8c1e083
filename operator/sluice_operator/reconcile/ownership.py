"""Labels, selectors and owner references of the children the operator creates.

Every child carries the ``app.kubernetes.io/*`` labels and an owner reference to its custom resource
(``controller: true``), so ``kubectl get deploy -l app.kubernetes.io/managed-by=sluice-operator`` finds
them and Kubernetes' garbage collector deletes them with their owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice_operator.models.common import API_VERSION, GROUP

__all__ = [
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "Owner",
    "child_labels",
    "owner_reference",
    "selector_labels",
    "selector_string",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "sluice-operator"
OWNER_KIND_LABEL = f"{GROUP}/owner-kind"
OWNER_NAME_LABEL = f"{GROUP}/owner-name"


@dataclass(frozen=True)
class Owner:
    """The custom resource a child belongs to."""

    kind: str
    name: str
    uid: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        metadata = body.get("metadata", {})
        return cls(kind=str(body["kind"]), name=str(metadata["name"]), uid=str(metadata["uid"]))


_COMPONENTS = {
    "ConsumerGroup": "consumer-group",
    "Projection": "projection",
    "Replay": "replay",
}


def selector_labels(owner: Owner) -> dict[str, str]:
    """The labels that select an owner's pods: the kind and the name of the owner (immutable in a Deployment)."""
    return {OWNER_KIND_LABEL: owner.kind.lower(), OWNER_NAME_LABEL: owner.name}


def child_labels(owner: Owner) -> dict[str, str]:
    """Every label of a child and its pods: the selector labels plus the recommended app.kubernetes.io ones."""
    return {
        "app.kubernetes.io/name": "sluice",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": _COMPONENTS.get(owner.kind, owner.kind.lower()),
        "app.kubernetes.io/part-of": "sluice",
        MANAGED_BY_LABEL: MANAGED_BY,
        **selector_labels(owner),
    }


def selector_string(owner: Owner) -> str:
    """The selector as a string, as ``status.selector`` (the /scale subresource) must hold it."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(owner).items()))


def owner_reference(owner: Owner) -> dict[str, Any]:
    """An owner reference making ``owner`` the controller of a child."""
    return {
        "apiVersion": API_VERSION,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
