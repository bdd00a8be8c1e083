"""Writing a custom resource's status: conditions merged with the previous ones, patched only on change; the
operator's Ready and Failed gauges follow every status it computes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sluice_operator.kubernetes_port import KubernetesPort
from sluice_operator.metrics import record_resource_status
from sluice_operator.reconcile.conditions import DesiredCondition, merge_conditions

__all__ = ["desired_status", "write_status"]


def desired_status(
    body: Mapping[str, Any],
    fields: Mapping[str, Any],
    conditions: Sequence[DesiredCondition],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The status to store: ``fields``, ``observedGeneration`` and the merged conditions."""
    current = body.get("status") or {}
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    return {
        **fields,
        "observedGeneration": generation,
        "conditions": merge_conditions(
            current.get("conditions") or [], conditions, generation=generation, now=now or datetime.now(UTC)
        ),
    }


def status_changed(body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether writing ``status`` (a merge patch) would change the stored status."""
    current = body.get("status") or {}
    return any(current.get(key) != value for key, value in status.items())


async def write_status(
    kubernetes: KubernetesPort,
    body: Mapping[str, Any],
    fields: Mapping[str, Any],
    conditions: Sequence[DesiredCondition],
) -> bool:
    """Patch the status when it changes; whether it was patched."""
    status = desired_status(body, fields, conditions)
    metadata = body["metadata"]
    record_resource_status(str(body["kind"]), metadata["namespace"], metadata["name"], status)
    if not status_changed(body, status):
        return False
    await kubernetes.patch_status(str(body["kind"]), metadata["namespace"], metadata["name"], status)
    return True
