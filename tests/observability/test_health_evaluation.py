"""The pure health verdict: lag thresholds (per stream and per group), stale members, dead letters,
an unreachable database. No store, no clock: observations are built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice import InvalidArgumentError
from sluice.core.streams import StreamType
from sluice.observability.health import (
    HealthStatus,
    HealthThresholds,
    LagThresholds,
    StreamObservation,
    evaluate_stream_health,
)
from sluice.observability.health.model import HealthSettings, ReasonCode
from sluice.store.values.consumer_groups import GroupDescription, MemberDescription, PartitionLag

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def group(
    group_id: str, *, lag: int = 0, oldest_seconds: float = 0, members: tuple[bool, ...] = ()
) -> GroupDescription:
    partition = PartitionLag(
        partition=0,
        committed_offset=100,
        head=100 + lag,
        owner=None,
        epoch=1,
        oldest_unconsumed_at=NOW - timedelta(seconds=oldest_seconds) if lag else None,
        observed_at=NOW,
    )
    return GroupDescription(
        stream_name="orders",
        group_id=group_id,
        generation=1,
        created_at=NOW - timedelta(hours=1),
        members=tuple(
            MemberDescription(
                consumer_id=f"w{index}",
                joined_at=NOW - timedelta(minutes=10),
                last_heartbeat_at=NOW - timedelta(seconds=1 if active else 120),
                partitions=(0,),
                active=active,
            )
            for index, active in enumerate(members)
        ),
        partitions=(partition,),
    )


def observe(*groups: GroupDescription, dead_lettered_at: tuple[datetime, ...] = ()) -> StreamObservation:
    return StreamObservation(
        stream_name="orders",
        stream_type=StreamType.PERSISTENT,
        observed_at=NOW,
        groups=groups,
        dead_lettered_at=dead_lettered_at,
    )


def test_a_stream_whose_groups_keep_up_is_healthy() -> None:
    health = evaluate_stream_health(
        observe(group("email", lag=5, oldest_seconds=2, members=(True,))), HealthThresholds()
    )
    assert health.status is HealthStatus.HEALTHY
    assert health.reasons == ()
    assert health.checked_at == NOW


def test_lag_in_events_past_its_limits_degrades_then_makes_unhealthy() -> None:
    thresholds = HealthThresholds(lag=LagThresholds(degraded_events=10, unhealthy_events=100, degraded_seconds=None))
    at_limit = evaluate_stream_health(observe(group("email", lag=10, oldest_seconds=1)), thresholds)
    assert at_limit.status is HealthStatus.HEALTHY
    over = evaluate_stream_health(observe(group("email", lag=11, oldest_seconds=1)), thresholds)
    assert over.status is HealthStatus.DEGRADED
    [reason] = over.reasons
    assert (reason.code, reason.group_id) == (ReasonCode.LAG_EVENTS, "email")
    assert "11 event(s) behind (limit 10)" in reason.message
    far = evaluate_stream_health(observe(group("email", lag=101, oldest_seconds=1)), thresholds)
    assert far.status is HealthStatus.UNHEALTHY


def test_lag_in_seconds_counts_too() -> None:
    thresholds = HealthThresholds(lag=LagThresholds(degraded_events=None, degraded_seconds=60, unhealthy_seconds=600))
    assert (
        evaluate_stream_health(observe(group("g", lag=1, oldest_seconds=59)), thresholds).status is HealthStatus.HEALTHY
    )
    degraded = evaluate_stream_health(observe(group("g", lag=1, oldest_seconds=61)), thresholds)
    assert [reason.code for reason in degraded.reasons] == [ReasonCode.LAG_SECONDS]
    assert degraded.status is HealthStatus.DEGRADED
    unhealthy = evaluate_stream_health(observe(group("g", lag=1, oldest_seconds=601)), thresholds)
    assert unhealthy.status is HealthStatus.UNHEALTHY


def test_a_group_override_replaces_the_stream_limits_for_that_group_only() -> None:
    thresholds = HealthThresholds(
        lag=LagThresholds(degraded_events=10), group_lag={"batch-reports": LagThresholds(degraded_events=10_000)}
    )
    health = evaluate_stream_health(
        observe(group("batch-reports", lag=5000, oldest_seconds=1), group("email", lag=50, oldest_seconds=1)),
        thresholds,
    )
    assert [(reason.code, reason.group_id) for reason in health.reasons] == [(ReasonCode.LAG_EVENTS, "email")]


def test_stale_members_degrade_unless_disabled() -> None:
    observation = observe(group("email", members=(True, False)))
    health = evaluate_stream_health(observation, HealthThresholds())
    assert health.status is HealthStatus.DEGRADED
    [reason] = health.reasons
    assert (reason.code, reason.consumer_id) == (ReasonCode.STALE_MEMBER, "w1")
    relaxed = evaluate_stream_health(observation, HealthThresholds(stale_members_degrade=False))
    assert relaxed.status is HealthStatus.HEALTHY


def test_recent_dead_letters_beyond_the_allowance_degrade_a_queue() -> None:
    thresholds = HealthThresholds(max_recent_dead_letters=1, dead_letter_window=timedelta(minutes=10))
    old = NOW - timedelta(minutes=30)
    recent = NOW - timedelta(minutes=1)
    assert (
        evaluate_stream_health(observe(dead_lettered_at=(old, old, recent)), thresholds).status is HealthStatus.HEALTHY
    )
    health = evaluate_stream_health(observe(dead_lettered_at=(old, recent, recent)), thresholds)
    assert health.status is HealthStatus.DEGRADED
    assert [reason.code for reason in health.reasons] == [ReasonCode.DEAD_LETTERS]
    assert "2 message(s)" in health.reasons[0].message


def test_an_unreachable_database_is_unhealthy_and_outranks_the_rest() -> None:
    observation = StreamObservation(
        stream_name="orders", stream_type=None, observed_at=NOW, groups=(group("g", members=(False,)),), error="refused"
    )
    health = evaluate_stream_health(observation, HealthThresholds())
    assert health.status is HealthStatus.UNHEALTHY
    assert [reason.code for reason in health.reasons] == [ReasonCode.DATABASE_UNREACHABLE, ReasonCode.STALE_MEMBER]


def test_settings_pick_per_stream_thresholds() -> None:
    special = HealthThresholds(lag=LagThresholds(degraded_events=1))
    settings = HealthSettings(stream_thresholds={"orders": special})
    assert settings.thresholds_for("orders") is special
    assert settings.thresholds_for("payments") == HealthThresholds()


def test_bad_thresholds_raise_a_sluice_error() -> None:
    with pytest.raises(InvalidArgumentError, match="degraded_events"):
        LagThresholds(degraded_events=-1)
