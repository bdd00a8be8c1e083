"""When a RetentionPolicy prunes: its cron schedule, its cleanup window, and runs requested by hand.

Pure functions of the policy and the current time, so the scheduling rules are unit-tested without a cluster.
Scheduled runs follow CronJob semantics: a run is due when a scheduled time has passed since the last run (or,
for a policy that never ran, since it was created); missed times do not pile up, one run covers them all. A
run requested with the ``sluice.dev/run-requested`` annotation (any new value) starts at once, even outside
the cleanup window: the window keeps scheduled runs out of busy hours, a run asked for by hand is deliberate.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, time, timedelta

from croniter import croniter

from sluice_operator.models.common import CleanupWindow

__all__ = [
    "RUN_REQUESTED_ANNOTATION",
    "RunDecision",
    "RunReason",
    "in_cleanup_window",
    "next_scheduled_time",
    "previous_scheduled_time",
    "run_decision",
]

RUN_REQUESTED_ANNOTATION = "sluice.dev/run-requested"
"""Set (or change) this annotation to prune now: ``kubectl annotate retentionpolicy NAME
sluice.dev/run-requested="$(date -Is)" --overwrite``."""


class RunReason(enum.StrEnum):
    """Why a run starts, or why it does not."""

    SCHEDULED = "Scheduled"
    REQUESTED = "Requested"
    NOT_DUE = "NotDue"
    OUTSIDE_CLEANUP_WINDOW = "OutsideCleanupWindow"


@dataclasses.dataclass(frozen=True, slots=True)
class RunDecision:
    """Whether to prune now, why, and when the next scheduled run is."""

    run: bool
    reason: RunReason
    next_run_time: datetime


def previous_scheduled_time(schedule: str, now: datetime) -> datetime:
    """The latest time at or before ``now`` that the cron schedule (UTC) names."""
    return croniter(schedule, now + timedelta(seconds=1)).get_prev(datetime)


def next_scheduled_time(schedule: str, now: datetime) -> datetime:
    """The first time after ``now`` that the cron schedule (UTC) names."""
    return croniter(schedule, now).get_next(datetime)


def _time_of_day(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def in_cleanup_window(window: CleanupWindow | None, now: datetime) -> bool:
    """Whether ``now`` (UTC) is inside the window; a window whose end is before its start wraps midnight, and
    its end is exclusive. No window: always."""
    if window is None:
        return True
    start, end, current = _time_of_day(window.start), _time_of_day(window.end), now.time().replace(tzinfo=None)
    if start < end:
        return start <= current < end
    return current >= start or current < end


def run_decision(
    *,
    schedule: str,
    window: CleanupWindow | None,
    now: datetime,
    created_at: datetime,
    last_run_time: datetime | None,
    run_requested: str | None,
    last_run_request: str | None,
) -> RunDecision:
    """Whether the policy prunes now.

    ``run_requested`` is the annotation's value now, ``last_run_request`` the value the last run served.
    """
    next_run_time = next_scheduled_time(schedule, now)
    requested = run_requested is not None and run_requested != last_run_request
    scheduled = previous_scheduled_time(schedule, now) > (last_run_time or created_at)
    if not (requested or scheduled):
        return RunDecision(run=False, reason=RunReason.NOT_DUE, next_run_time=next_run_time)
    if requested:
        return RunDecision(run=True, reason=RunReason.REQUESTED, next_run_time=next_run_time)
    if not in_cleanup_window(window, now):
        return RunDecision(run=False, reason=RunReason.OUTSIDE_CLEANUP_WINDOW, next_run_time=next_run_time)
    return RunDecision(run=True, reason=RunReason.SCHEDULED, next_run_time=next_run_time)
