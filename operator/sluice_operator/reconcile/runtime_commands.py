"""Which ``sluice`` subcommands the operator's pods rely on, and the condition saying one is not there yet.

Projection pods run ``sluice project`` and Replay jobs ``sluice replay``; those commands belong to later
issues. Until they exist the operator still creates the children (so their shape is reviewed and tested), and
reports the gap as ``Stalled`` with reason ``RuntimeCommandPending`` instead of pretending to be Ready.
"""

from __future__ import annotations

from sluice_operator.models.common import ConditionStatus
from sluice_operator.reconcile.conditions import DesiredCondition

__all__ = ["AVAILABLE_COMMANDS", "RUNTIME_AVAILABLE", "runtime_available"]

AVAILABLE_COMMANDS = frozenset({"consume"})
"""Subcommands of the Sluice image this operator version targets."""
RUNTIME_AVAILABLE = "RuntimeAvailable"


def runtime_available(command: str, issue: str) -> DesiredCondition:
    """RuntimeAvailable: whether the pods' ``sluice <command>`` exists in the targeted Sluice image."""
    if command in AVAILABLE_COMMANDS:
        return DesiredCondition(RUNTIME_AVAILABLE, ConditionStatus.TRUE, "CommandAvailable", f"sluice {command}")
    return DesiredCondition(
        RUNTIME_AVAILABLE,
        ConditionStatus.FALSE,
        "RuntimeCommandPending",
        f"`sluice {command}` is not in this Sluice release yet ({issue}); the operator created the workload, "
        "but its pods cannot do the work until an image with that command is used",
    )
