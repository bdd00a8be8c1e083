"""Where the Sluice kinds live in the Kubernetes API, and what a CRD says about a kind beyond its schema.

The API group and version, the category ``kubectl get sluice`` lists, and per kind its names, short names,
``kubectl get`` columns and ``/scale`` subresource (``ResourceDefinition``); ``sluice_operator.crd_generation``
writes them into the CustomResourceDefinitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

__all__ = [
    "AGE_COLUMN",
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "READY_COLUMN",
    "VERSION",
    "PrinterColumn",
    "ResourceDefinition",
    "ScaleSubresource",
    "condition_column",
]

GROUP = "sluice.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "sluice"
"""``kubectl get sluice`` lists every kind in this category."""


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry: a column of ``kubectl get``."""

    name: str
    json_path: str
    type: Literal["integer", "number", "string", "boolean", "date"]
    description: str
    priority: int = 0
    """0 for the default view, 1 for ``-o wide`` only."""
    format: str | None = None

    def to_manifest(self) -> dict[str, JsonValue]:
        """The column as it appears in a CustomResourceDefinition."""
        column: dict[str, JsonValue] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.format is not None:
            column["format"] = self.format
        if self.priority:
            column["priority"] = self.priority
        return column


def condition_column(name: str, condition_type: str, *, priority: int = 0) -> PrinterColumn:
    """A column showing one condition's status (True, False or Unknown)."""
    return PrinterColumn(
        name=name,
        json_path=f'.status.conditions[?(@.type=="{condition_type}")].status',
        type="string",
        description=f"Status of the {condition_type} condition",
        priority=priority,
    )


READY_COLUMN = condition_column("Ready", "Ready")
AGE_COLUMN = PrinterColumn(
    name="Age",
    json_path=".metadata.creationTimestamp",
    type="date",
    description="Time since the object was created",
)


@dataclass(frozen=True)
class ScaleSubresource:
    """The ``/scale`` subresource, which ``kubectl scale``, the HPA and KEDA use."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str = ".status.selector"

    def to_manifest(self) -> dict[str, JsonValue]:
        """The subresource as it appears in a CustomResourceDefinition."""
        return {
            "specReplicasPath": self.spec_replicas_path,
            "statusReplicasPath": self.status_replicas_path,
            "labelSelectorPath": self.label_selector_path,
        }


@dataclass(frozen=True)
class ResourceDefinition:
    """What a CustomResourceDefinition says about a kind beyond its schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...]
    scale: ScaleSubresource | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def name(self) -> str:
        """The CustomResourceDefinition's own name, ``<plural>.<group>``."""
        return f"{self.plural}.{GROUP}"
