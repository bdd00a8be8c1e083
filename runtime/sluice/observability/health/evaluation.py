"""The health verdict as a pure function of an observation and thresholds: no I/O, no clock."""

from __future__ import annotations

from sluice.observability.health.model import (
    HealthReason,
    HealthStatus,
    HealthThresholds,
    LagThresholds,
    ReasonCode,
    StreamHealth,
    StreamObservation,
)
from sluice.store.values.consumer_groups import GroupDescription


def evaluate_stream_health(observation: StreamObservation, thresholds: HealthThresholds) -> StreamHealth:
    """Healthy, degraded or unhealthy, with every reason found."""
    reasons: list[HealthReason] = []
    if observation.error is not None:
        reasons.append(
            HealthReason(
                code=ReasonCode.DATABASE_UNREACHABLE,
                status=HealthStatus.UNHEALTHY,
                message=f"the database could not be reached: {observation.error}",
            )
        )
    for group in observation.groups:
        reasons.extend(_lag_reasons(group, thresholds.lag_for(group.group_id)))
        if thresholds.stale_members_degrade:
            reasons.extend(_stale_member_reasons(group))
    reasons.extend(_dead_letter_reasons(observation, thresholds))
    status = max(
        (reason.status for reason in reasons), key=lambda status: status.severity, default=HealthStatus.HEALTHY
    )
    return StreamHealth(
        stream_name=observation.stream_name,
        status=status,
        reasons=tuple(reasons),
        checked_at=observation.observed_at,
    )


def _lag_reasons(group: GroupDescription, limits: LagThresholds) -> list[HealthReason]:
    reasons = []
    lag_events = group.lag_events
    events_status = _status_over(lag_events, degraded=limits.degraded_events, unhealthy=limits.unhealthy_events)
    if events_status is not HealthStatus.HEALTHY:
        limit = limits.unhealthy_events if events_status is HealthStatus.UNHEALTHY else limits.degraded_events
        reasons.append(
            HealthReason(
                code=ReasonCode.LAG_EVENTS,
                status=events_status,
                message=f"group {group.group_id!r} is {lag_events} event(s) behind (limit {limit})",
                group_id=group.group_id,
            )
        )
    lag_seconds = group.lag_seconds
    seconds_status = _status_over(lag_seconds, degraded=limits.degraded_seconds, unhealthy=limits.unhealthy_seconds)
    if seconds_status is not HealthStatus.HEALTHY:
        limit_seconds = (
            limits.unhealthy_seconds if seconds_status is HealthStatus.UNHEALTHY else limits.degraded_seconds
        )
        reasons.append(
            HealthReason(
                code=ReasonCode.LAG_SECONDS,
                status=seconds_status,
                message=(
                    f"group {group.group_id!r}'s oldest uncommitted event is {lag_seconds:.1f} s old "
                    f"(limit {limit_seconds} s)"
                ),
                group_id=group.group_id,
            )
        )
    return reasons


def _status_over(value: float, *, degraded: float | None, unhealthy: float | None) -> HealthStatus:
    if unhealthy is not None and value > unhealthy:
        return HealthStatus.UNHEALTHY
    if degraded is not None and value > degraded:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


def _stale_member_reasons(group: GroupDescription) -> list[HealthReason]:
    return [
        HealthReason(
            code=ReasonCode.STALE_MEMBER,
            status=HealthStatus.DEGRADED,
            message=(
                f"consumer {member.consumer_id!r} of group {group.group_id!r} has not sent a heartbeat "
                f"within its session timeout (last at {member.last_heartbeat_at.isoformat()})"
            ),
            group_id=group.group_id,
            consumer_id=member.consumer_id,
        )
        for member in group.members
        if not member.active
    ]


def _dead_letter_reasons(observation: StreamObservation, thresholds: HealthThresholds) -> list[HealthReason]:
    since = observation.observed_at - thresholds.dead_letter_window
    recent = sum(1 for buried_at in observation.dead_lettered_at if buried_at >= since)
    if recent <= thresholds.max_recent_dead_letters:
        return []
    minutes = thresholds.dead_letter_window.total_seconds() / 60
    return [
        HealthReason(
            code=ReasonCode.DEAD_LETTERS,
            status=HealthStatus.DEGRADED,
            message=(
                f"{recent} message(s) were dead-lettered in the last {minutes:g} minute(s) "
                f"(limit {thresholds.max_recent_dead_letters})"
            ),
        )
    ]
