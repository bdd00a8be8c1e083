"""Conditions in the shape of Kubernetes' metav1.Condition, and the kstatus roll-up into Ready.

A reconcile computes the kind-specific conditions (SchemaReady, WorkloadAvailable, ...); ``roll_up`` adds
``Ready``, ``Reconciling`` and ``Stalled`` from them, and ``merge_conditions`` turns the result into the
list to store, keeping each condition's ``lastTransitionTime`` while its status stays the same (so writing
the same status again is a no-op, and a status is only patched when something changed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice_operator.models.common import ConditionStatus

__all__ = [
    "READY",
    "RECONCILING",
    "STALLED",
    "DesiredCondition",
    "format_time",
    "merge_conditions",
    "roll_up",
]

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class DesiredCondition:
    """A condition as a reconcile decides it, before timestamps and generations are added."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""

    @property
    def holds(self) -> bool:
        return self.status is ConditionStatus.TRUE


def roll_up(
    specific: Sequence[DesiredCondition],
    *,
    stalled: DesiredCondition | None = None,
    ready_message: str = "",
) -> list[DesiredCondition]:
    """Ready, Reconciling and Stalled, followed by the kind-specific conditions.

    ``stalled`` (an error that will not fix itself, such as an unsupported spec) makes Stalled True and
    Ready False. Otherwise Ready is True only when every kind-specific condition is True; the first one
    that is not gives Ready its status, reason and message, and Reconciling is True while it waits.
    """
    if stalled is not None:
        return [
            DesiredCondition(READY, ConditionStatus.FALSE, stalled.reason, stalled.message),
            DesiredCondition(RECONCILING, ConditionStatus.FALSE, stalled.reason, "stalled: " + stalled.message),
            DesiredCondition(STALLED, ConditionStatus.TRUE, stalled.reason, stalled.message),
            *specific,
        ]
    pending = next((condition for condition in specific if not condition.holds), None)
    if pending is None:
        return [
            DesiredCondition(READY, ConditionStatus.TRUE, "Reconciled", ready_message),
            DesiredCondition(RECONCILING, ConditionStatus.FALSE, "Reconciled", ""),
            DesiredCondition(STALLED, ConditionStatus.FALSE, "Reconciled", ""),
            *specific,
        ]
    ready_status = ConditionStatus.UNKNOWN if pending.status is ConditionStatus.UNKNOWN else ConditionStatus.FALSE
    return [
        DesiredCondition(READY, ready_status, pending.reason, pending.message),
        DesiredCondition(RECONCILING, ConditionStatus.TRUE, pending.reason, pending.message),
        DesiredCondition(STALLED, ConditionStatus.FALSE, pending.reason, ""),
        *specific,
    ]


def format_time(moment: datetime) -> str:
    """RFC 3339 with second precision and a Z, as Kubernetes writes times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    desired: Sequence[DesiredCondition],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """The conditions to store: ``desired`` in order, each keeping the previous ``lastTransitionTime``
    when its status did not change, and ``now`` when it did (or when it is new)."""
    previous_by_type = {condition.get("type"): condition for condition in previous}
    merged: list[dict[str, Any]] = []
    for condition in desired:
        earlier = previous_by_type.get(condition.type)
        transition_time = format_time(now)
        if earlier is not None and earlier.get("status") == condition.status.value:
            transition_time = str(earlier.get("lastTransitionTime") or transition_time)
        merged.append(
            {
                "type": condition.type,
                "status": condition.status.value,
                "observedGeneration": generation,
                "lastTransitionTime": transition_time,
                "reason": condition.reason,
                "message": condition.message,
            }
        )
    return merged
