"""The retention limits of a manifest (an EventStream's ``spec.retention`` or a RetentionPolicy) as the
runtime's ``sluice.services.retention.RetentionLimits``, and a prune report as status fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluice.services.retention import PruneReport
from sluice.services.retention import RetentionLimits as RuntimeRetentionLimits
from sluice_operator.models.common import RetentionLimits, parse_byte_quantity, parse_duration

__all__ = ["prune_status_fields", "runtime_limits"]


def runtime_limits(limits: RetentionLimits) -> RuntimeRetentionLimits:
    """The limits to prune with. The cleanup window is the operator's to check (a run asked for by hand
    ignores it), so it is not passed on."""
    return RuntimeRetentionLimits(
        max_age=None if limits.max_age is None else parse_duration(limits.max_age),
        max_event_count=limits.max_event_count,
        max_bytes=None if limits.max_bytes is None else parse_byte_quantity(limits.max_bytes),
        enforce=not limits.respect_consumer_positions,
    )


def prune_status_fields(reports: Sequence[PruneReport]) -> dict[str, Any]:
    """``prunedEvents``, ``prunedBytes`` and ``heldBackBy`` (``stream/group``) summed over a run's streams."""
    return {
        "prunedEvents": sum(report.pruned_events for report in reports),
        "prunedBytes": sum(report.pruned_bytes for report in reports),
        "heldBackBy": sorted({f"{report.stream}/{group}" for report in reports for group in report.held_back_by}),
    }
