"""What retention is configured with and what it reports: limits, cleanup windows, policies, prune reports.

Plain data, shared by the pruning logic and by the storage of both backends (which persist policies
and answer the few questions pruning asks). Invalid input raises ``InvalidArgumentError``.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, time, timedelta
from typing import Annotated, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from sluice.core.errors import InvalidArgumentError
from sluice.core.validation import SluiceModel
from sluice.store.values.retention_patterns import validate_pattern

DEFAULT_CLEANUP_INTERVAL = timedelta(minutes=5)
"""How often a policy runs when it does not say (the worker also never runs one outside its window)."""

_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_time_of_day(text: str) -> time:
    """``"01:30"`` → ``time(1, 30)``: a UTC time of day on a 24-hour clock; ValueError otherwise."""
    matched = _TIME_OF_DAY.fullmatch(text)
    if matched is None:
        raise ValueError(f"invalid time of day {text!r}: use HH:MM on a 24-hour clock, such as 01:00")
    return time(int(matched.group(1)), int(matched.group(2)))


class CleanupWindow(SluiceModel):
    """When pruning may run, in UTC: from ``start`` (included) to ``end`` (excluded). A window whose
    end is before its start runs over midnight (``22:00``-``02:00``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time_of_day(cls, value: object) -> object:
        return parse_time_of_day(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("a cleanup window's start and end must differ")
        if self.start.tzinfo is not None or self.end.tzinfo is not None or self.start.second or self.end.second:
            raise ValueError("a cleanup window is given in whole minutes, UTC, without a time zone")
        return self

    @classmethod
    def parse(cls, text: str) -> CleanupWindow:
        """``"01:00-04:00"`` → ``CleanupWindow(start=01:00, end=04:00)``."""
        start, separator, end = text.partition("-")
        try:
            if not separator:
                raise ValueError(f"invalid cleanup window {text!r}: use HH:MM-HH:MM (UTC), such as 01:00-04:00")
            return cls(start=parse_time_of_day(start.strip()), end=parse_time_of_day(end.strip()))
        except ValueError as error:
            if isinstance(error, InvalidArgumentError):
                raise
            raise InvalidArgumentError(str(error)) from error

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (timezone-aware; compared in UTC) falls inside the window."""
        offset = moment.utcoffset()
        utc = moment - offset if offset is not None else moment
        now = utc.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class RetentionLimits(SluiceModel):
    """How much of a stream to keep. Events beyond any one limit are pruned, oldest first.

    ``max_age``: events stored longer ago than this. ``max_event_count``: per partition, events
    beyond the newest N. ``max_bytes``: per stream, payload bytes (the stored ``data``) beyond the
    newest ``max_bytes``, counted across partitions in storage-time order. ``enforce=False``
    (the default, consumer-aware) never prunes past the lowest committed offset of an active
    consumer group; ``enforce=True`` prunes to the limits anyway and counts every group it leaves
    behind the start of the log (see ``sluice.services.retention.pruning``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_age: timedelta | None = None
    max_event_count: Annotated[int, Field(ge=1)] | None = None
    max_bytes: Annotated[int, Field(ge=0)] | None = None
    cleanup_window: CleanupWindow | None = None
    cleanup_interval: timedelta = DEFAULT_CLEANUP_INTERVAL
    enforce: bool = False

    @model_validator(mode="after")
    def _has_a_limit(self) -> Self:
        if self.max_age is None and self.max_event_count is None and self.max_bytes is None:
            raise ValueError("retention needs at least one of max_age, max_event_count or max_bytes")
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if self.cleanup_interval <= timedelta(0):
            raise ValueError("cleanup_interval must be positive")
        return self

    @property
    def respect_consumers(self) -> bool:
        return not self.enforce


class RetentionPolicy(SluiceModel):
    """Limits for every stream whose name matches ``pattern``: a stream name, a literal prefix and
    ``*`` (``orders-*``), or ``*`` alone. The most specific matching policy wins (see patterns.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str
    limits: RetentionLimits
    last_applied_at: datetime | None = None
    """When the policy last ran (``apply_policies``); None if never."""

    @field_validator("pattern")
    @classmethod
    def _pattern_is_valid(cls, value: str) -> str:
        return validate_pattern(value)


@dataclasses.dataclass(frozen=True, slots=True)
class PruneReport:
    """What one ``prune_stream`` did.

    ``oldest_retained_offsets`` is each partition's first offset after the prune (its head when the
    partition is now empty). ``held_back_by`` lists the active consumer groups that kept events the
    limits would have pruned (respect mode); ``truncated_groups`` the groups that enforce mode left
    behind the start of the log (each is also counted in the ``sluice_retention_truncations`` metric)."""

    stream: str
    pruned_events: int
    pruned_bytes: int
    oldest_retained_offsets: dict[int, int]
    held_back_by: list[str]
    truncated_groups: list[str] = dataclasses.field(default_factory=list)
    skipped_reason: str | None = None
    """Set when nothing was attempted (outside the cleanup window, for example)."""


@dataclasses.dataclass(frozen=True, slots=True)
class GroupPosition:
    """One partition of one consumer group, as retention sees it."""

    group_id: str
    partition: int
    committed_offset: int
    last_active_at: datetime
    """The latest of: the group's creation, its last commit, its members' last heartbeat."""


@dataclasses.dataclass(frozen=True, slots=True)
class DeletedBatch:
    """One bounded delete: how many events and payload bytes went, and the partition's new first offset."""

    events: int
    bytes: int
    first_offset: int
