"""The RetentionPolicy's scheduling rules: cron schedule, cleanup window and runs requested by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluice_operator.models.common import CleanupWindow
from sluice_operator.reconcile.retention_schedule import (
    RunReason,
    in_cleanup_window,
    next_scheduled_time,
    previous_scheduled_time,
    run_decision,
)

CREATED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def decide(now: datetime, last_run: datetime | None = None, **changes: object) -> RunReason:
    arguments: dict[str, object] = {
        "schedule": "0 3 * * *",
        "window": None,
        "now": now,
        "created_at": CREATED,
        "last_run_time": last_run,
        "run_requested": None,
        "last_run_request": None,
    } | changes
    decision = run_decision(**arguments)  # type: ignore[arg-type]
    assert decision.run == (decision.reason in {RunReason.SCHEDULED, RunReason.REQUESTED})
    return decision.reason


def test_scheduled_times_around_now() -> None:
    assert previous_scheduled_time("0 3 * * *", at(26, 11)) == at(26, 3)
    assert previous_scheduled_time("0 3 * * *", at(26, 3)) == at(26, 3)
    assert next_scheduled_time("0 3 * * *", at(26, 11)) == at(27, 3)
    assert next_scheduled_time("@hourly", at(26, 11, 30)) == at(26, 12)


def test_a_run_is_due_once_per_scheduled_time_like_a_cron_job() -> None:
    assert decide(at(20, 13)) is RunReason.NOT_DUE  # created after the day's 03:00
    assert decide(at(21, 3, 1)) is RunReason.SCHEDULED  # never ran: the first time after creation
    assert decide(at(21, 3, 5), last_run=at(21, 3, 1)) is RunReason.NOT_DUE
    # Missed days do not pile up: one run covers them.
    assert decide(at(25, 9), last_run=at(21, 3, 1)) is RunReason.SCHEDULED
    assert decide(at(25, 9, 1), last_run=at(25, 9)) is RunReason.NOT_DUE


def test_the_cleanup_window_holds_back_scheduled_runs_but_not_requested_ones() -> None:
    window = CleanupWindow(start="01:00", end="04:00")
    assert decide(at(21, 3, 30), window=window) is RunReason.SCHEDULED
    assert decide(at(21, 5), window=window) is RunReason.OUTSIDE_CLEANUP_WINDOW
    assert decide(at(21, 5), window=window, run_requested="2026-11-21T05:00") is RunReason.REQUESTED


def test_a_request_runs_once_per_new_annotation_value() -> None:
    assert decide(at(20, 13), run_requested="one") is RunReason.REQUESTED
    assert decide(at(20, 14), run_requested="one", last_run_request="one") is RunReason.NOT_DUE
    assert decide(at(20, 15), run_requested="two", last_run_request="one") is RunReason.REQUESTED


@pytest.mark.parametrize(
    ("start", "end", "inside", "outside"),
    [
        ("01:00", "04:00", [at(26, 1), at(26, 3, 59)], [at(26, 0, 59), at(26, 4), at(26, 12)]),
        ("22:00", "02:00", [at(26, 22), at(26, 23, 59), at(26, 0), at(26, 1, 59)], [at(26, 2), at(26, 21, 59)]),
    ],
)
def test_cleanup_windows_including_one_over_midnight(
    start: str, end: str, inside: list[datetime], outside: list[datetime]
) -> None:
    window = CleanupWindow(start=start, end=end)
    assert all(in_cleanup_window(window, moment) for moment in inside)
    assert not any(in_cleanup_window(window, moment) for moment in outside)
    assert in_cleanup_window(None, at(26, 12))
