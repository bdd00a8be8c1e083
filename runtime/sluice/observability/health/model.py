"""Health thresholds, verdicts and the observations they are computed from."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from sluice.core.streams import StreamType
from sluice.core.validation import SluiceModel
from sluice.store.values.consumer_groups import GroupDescription


class HealthStatus(enum.StrEnum):
    """Ordered from best to worst: the verdict is the worst status among the reasons."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}


class ReasonCode(enum.StrEnum):
    """Why a stream is not healthy; stable strings that alerts can match."""

    LAG_EVENTS = "consumer_lag_events"
    LAG_SECONDS = "consumer_lag_seconds"
    STALE_MEMBER = "stale_consumer"
    DEAD_LETTERS = "dead_letter_growth"
    DATABASE_UNREACHABLE = "database_unreachable"


class LagThresholds(SluiceModel):
    """Lag limits of a consumer group. ``None`` disables a limit. Passing a ``degraded_*`` limit makes
    the stream degraded, passing an ``unhealthy_*`` one makes it unhealthy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    degraded_events: Annotated[int, Field(ge=0)] | None = 10_000
    degraded_seconds: Annotated[float, Field(ge=0)] | None = 300.0
    unhealthy_events: Annotated[int, Field(ge=0)] | None = None
    unhealthy_seconds: Annotated[float, Field(ge=0)] | None = None


class HealthThresholds(SluiceModel):
    """The limits of one stream: lag limits for its groups (with overrides per group id), whether
    stale members count, and how many new dead letters (queues) within a window are acceptable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lag: LagThresholds = LagThresholds()
    group_lag: dict[str, LagThresholds] = Field(default_factory=dict)
    """Overrides of ``lag`` by group id."""
    stale_members_degrade: bool = True
    max_recent_dead_letters: Annotated[int, Field(ge=0)] = 0
    """Dead letters buried within ``dead_letter_window`` beyond this make a queue degraded."""
    dead_letter_window: timedelta = timedelta(minutes=15)
    dead_letter_scan_limit: Annotated[int, Field(ge=1, le=10_000)] = 1000
    """At most this many dead letters are read per check (oldest first)."""

    def lag_for(self, group_id: str) -> LagThresholds:
        return self.group_lag.get(group_id, self.lag)


class HealthSettings(SluiceModel):
    """Health configuration of a server: default thresholds, per-stream thresholds, probe timeout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    thresholds: HealthThresholds = HealthThresholds()
    stream_thresholds: dict[str, HealthThresholds] = Field(default_factory=dict)
    probe_timeout: timedelta = timedelta(seconds=3)
    """How long a readiness or stream health check may wait for the database."""

    def thresholds_for(self, stream_name: str) -> HealthThresholds:
        return self.stream_thresholds.get(stream_name, self.thresholds)


class HealthReason(BaseModel):
    """One finding: what is wrong, how bad, and where (group and member when it applies)."""

    model_config = ConfigDict(frozen=True)

    code: ReasonCode
    status: HealthStatus
    message: str
    group_id: str | None = None
    consumer_id: str | None = None


class StreamHealth(BaseModel):
    """The verdict on one stream: the worst status among its reasons (healthy when there are none)."""

    model_config = ConfigDict(frozen=True)

    stream_name: str
    status: HealthStatus
    reasons: tuple[HealthReason, ...] = ()
    checked_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class StreamObservation:
    """What a health check saw: the stream's groups and (queues) when its dead letters were buried.

    ``error`` is set instead when the database could not be reached."""

    stream_name: str
    stream_type: StreamType | None
    observed_at: datetime
    groups: tuple[GroupDescription, ...] = ()
    dead_lettered_at: tuple[datetime, ...] = ()
    error: str | None = None


class Readiness(BaseModel):
    """What ``/health/ready`` answers."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    backend: str
    detail: str
    schema_version: int | None = None
