"""Retention's pure decisions: cleanup windows, pattern precedence, limit validation and planning."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from sluice.core.errors import InvalidArgumentError
from sluice.services.retention import CleanupWindow, RetentionLimits, RetentionPolicy
from sluice.services.retention.planning import count_cutoff, limit_cutoff, plan_partition
from sluice.store.values.retention import GroupPosition
from sluice.store.values.retention_patterns import matches, most_specific, validate_pattern

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return NOW.replace(hour=hour, minute=minute)


def test_a_window_contains_its_start_but_not_its_end() -> None:
    window = CleanupWindow.parse("01:00-04:00")
    assert (window.start, window.end) == (time(1), time(4))
    assert [window.contains(at(hour)) for hour in (0, 1, 3, 4, 12)] == [False, True, True, False, False]
    assert window.contains(at(3, 59))
    assert str(window) == "01:00-04:00"


def test_a_window_over_midnight_wraps() -> None:
    window = CleanupWindow.parse("22:30-02:00")
    assert [window.contains(at(hour, 45)) for hour in (21, 22, 23, 0, 1, 2, 12)] == [
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]


def test_a_window_compares_in_utc() -> None:
    window = CleanupWindow.parse("01:00-04:00")
    plus_two = timezone(timedelta(hours=2))
    assert window.contains(datetime(2026, 11, 26, 5, 30, tzinfo=plus_two))  # 03:30 UTC
    assert not window.contains(datetime(2026, 11, 26, 2, 30, tzinfo=plus_two))  # 00:30 UTC


@pytest.mark.parametrize("text", ["01:00", "1:00-04:00", "24:00-01:00", "01:00-01:00", "01:00-4"])
def test_a_malformed_window_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgumentError):
        CleanupWindow.parse(text)


def test_limits_need_at_least_one_limit_and_sane_values() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one"):
        RetentionLimits()
    with pytest.raises(InvalidArgumentError):
        RetentionLimits(max_event_count=0)
    with pytest.raises(InvalidArgumentError):
        RetentionLimits(max_age=timedelta(0))
    assert RetentionLimits(max_bytes=0).respect_consumers


@pytest.mark.parametrize("pattern", ["", "**", "orders*x", "-orders", "ord ers", "a" * 202, "*orders"])
def test_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidArgumentError):
        validate_pattern(pattern)
    with pytest.raises(InvalidArgumentError):
        RetentionPolicy(pattern=pattern, limits=RetentionLimits(max_event_count=1))


def test_the_most_specific_pattern_wins() -> None:
    limits = RetentionLimits(max_event_count=1)
    policies = [
        RetentionPolicy(pattern=pattern, limits=limits) for pattern in ("*", "orders-*", "orders-eu-*", "orders-eu-1")
    ]

    def winner(stream: str) -> str | None:
        chosen = most_specific(policies, stream)
        return chosen.pattern if chosen else None

    assert winner("orders-eu-1") == "orders-eu-1"
    assert winner("orders-eu-2") == "orders-eu-*"
    assert winner("orders-us") == "orders-*"
    assert winner("orders") == "*"
    assert winner("payments") == "*"
    assert most_specific(policies[1:], "payments") is None
    assert matches("orders-*", "orders-")
    assert not matches("orders", "orders-1")


def test_the_highest_cutoff_of_the_limits_applies_within_the_log() -> None:
    assert limit_cutoff(10, 100, (None, count_cutoff(100, 30), 50)) == 70
    assert limit_cutoff(10, 100, (5, None)) == 10  # never below the current start
    assert limit_cutoff(10, 100, (500,)) == 100  # never past the head
    assert limit_cutoff(10, 100, (None, None)) == 10


def group(group_id: str, committed: int, idle: timedelta = timedelta(0)) -> GroupPosition:
    return GroupPosition(group_id, 0, committed, NOW - idle)


def test_respect_mode_stops_at_the_lowest_active_group_and_names_it() -> None:
    groups = [group("slow", 30), group("fast", 95), group("gone", 5, idle=timedelta(days=8))]
    plan = plan_partition(
        partition=0, first_offset=0, head=100, limit_cutoff=90, groups=groups, respect_consumers=True, now=NOW
    )
    assert plan.cutoff == 30
    assert plan.held_back_by == ("slow",)
    assert plan.truncated_groups == ("gone",)  # idle past the horizon: not protected, but told
    assert plan.events_to_prune == 30


def test_enforce_mode_cuts_at_the_limit_and_lists_every_group_left_behind() -> None:
    groups = [group("slow", 30), group("fast", 95), group("at-cutoff", 90)]
    plan = plan_partition(
        partition=0, first_offset=0, head=100, limit_cutoff=90, groups=groups, respect_consumers=False, now=NOW
    )
    assert plan.cutoff == 90
    assert plan.held_back_by == ()
    assert plan.truncated_groups == ("slow",)


def test_a_group_already_behind_the_start_holds_back_everything_in_respect_mode() -> None:
    plan = plan_partition(
        partition=0,
        first_offset=50,
        head=100,
        limit_cutoff=90,
        groups=[group("late", 10)],
        respect_consumers=True,
        now=NOW,
    )
    assert plan.cutoff == 50
    assert plan.events_to_prune == 0
    assert plan.held_back_by == ("late",)
    assert plan.truncated_groups == ()
