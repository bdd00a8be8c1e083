"""Stored retention policies on both backends: set, list, delete, precedence, and apply_policies with
windows and cleanup intervals (the time is injected)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sluice import EventData, EventStore
from sluice.core.errors import InvalidArgumentError, RetentionPolicyNotFoundError
from sluice.services.retention import (
    CleanupWindow,
    RetentionLimits,
    RetentionWorker,
    apply_policies,
    delete_policy,
    list_policies,
    policy_for,
    set_policy,
)

NIGHT = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def fill(store: EventStore, stream: str, count: int) -> None:
    await store.append(stream, [EventData("E", b"x" * 4) for _ in range(count)])


async def first_offset(store: EventStore, stream: str) -> int:
    return (await store.get_stream(stream)).partition_heads[0].first_offset


async def test_policies_are_stored_replaced_and_deleted(store: EventStore) -> None:
    assert await list_policies(store) == []
    await set_policy(store, "orders-*", RetentionLimits(max_age=timedelta(days=7)))
    await set_policy(
        store, "*", RetentionLimits(max_event_count=1000, cleanup_window=CleanupWindow.parse("01:00-04:00"))
    )
    await set_policy(store, "orders-*", RetentionLimits(max_event_count=5, max_bytes=1 << 20, enforce=True))
    policies = await list_policies(store)
    assert [policy.pattern for policy in policies] == ["*", "orders-*"]
    assert policies[1].limits == RetentionLimits(max_event_count=5, max_bytes=1 << 20, enforce=True)
    assert str(policies[0].limits.cleanup_window) == "01:00-04:00"
    await delete_policy(store, "orders-*")
    assert [policy.pattern for policy in await list_policies(store)] == ["*"]
    with pytest.raises(RetentionPolicyNotFoundError):
        await delete_policy(store, "orders-*")
    with pytest.raises(InvalidArgumentError):
        await set_policy(store, "orders-*-eu", RetentionLimits(max_event_count=1))


async def test_the_most_specific_stored_policy_applies(store: EventStore) -> None:
    for pattern, count in (("*", 50), ("orders-*", 20), ("orders-eu-*", 10), ("orders-eu-1", 5)):
        await set_policy(store, pattern, RetentionLimits(max_event_count=count))
    for stream in ("orders-eu-1", "orders-eu-2", "orders-us", "payments"):
        await fill(store, stream, 60)
    chosen = await policy_for(store, "orders-eu-2")
    assert chosen is not None
    assert chosen.pattern == "orders-eu-*"
    reports = {report.stream: report for report in await apply_policies(store, now=NOON)}
    assert {stream: report.pruned_events for stream, report in reports.items()} == {
        "orders-eu-1": 55,
        "orders-eu-2": 50,
        "orders-us": 40,
        "payments": 10,
    }


async def test_apply_runs_a_policy_only_inside_its_window_unless_told_otherwise(store: EventStore) -> None:
    await set_policy(store, "*", RetentionLimits(max_event_count=10, cleanup_window=CleanupWindow.parse("23:00-03:00")))
    await fill(store, "nightly", 30)
    (skipped,) = await apply_policies(store, now=NOON)
    assert skipped.pruned_events == 0
    assert skipped.skipped_reason is not None
    assert await first_offset(store, "nightly") == 0
    (ran,) = await apply_policies(store, now=NIGHT)
    assert ran.pruned_events == 20
    await fill(store, "nightly", 5)
    (forced,) = await apply_policies(store, now=NOON, ignore_window=True, stream="nightly")
    assert forced.pruned_events == 5


async def test_due_only_runs_each_policy_once_per_cleanup_interval(store: EventStore) -> None:
    await set_policy(store, "*", RetentionLimits(max_event_count=10, cleanup_interval=timedelta(minutes=10)))
    await fill(store, "ticking", 30)
    (first,) = await apply_policies(store, now=NIGHT, due_only=True)
    assert first.pruned_events == 20
    await fill(store, "ticking", 5)
    (second,) = await apply_policies(store, now=NIGHT + timedelta(minutes=5), due_only=True)
    assert second.skipped_reason is not None
    assert second.pruned_events == 0
    (third,) = await apply_policies(store, now=NIGHT + timedelta(minutes=10), due_only=True)
    assert third.pruned_events == 5
    (stored,) = await list_policies(store)
    assert stored.last_applied_at == NIGHT + timedelta(minutes=10)


async def test_the_worker_applies_due_policies_in_the_background(store: EventStore) -> None:
    await set_policy(store, "*", RetentionLimits(max_event_count=3))
    await fill(store, "background", 10)
    async with RetentionWorker(store, tick=timedelta(milliseconds=50)) as worker:
        for _ in range(200):
            if worker.runs:
                break
            await asyncio.sleep(0.05)
    assert worker.runs >= 1
    assert [report.stream for report in worker.last_reports] == ["background"]
    assert await first_offset(store, "background") == 7
    with pytest.raises(InvalidArgumentError):
        RetentionWorker(store, tick=timedelta(0))
