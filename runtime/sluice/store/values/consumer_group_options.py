"""How a consumer-group member consumes: commit strategy, batch size, timeouts, start position."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from sluice.core.validation import SluiceModel


class OffsetCommitStrategy(enum.StrEnum):
    """When a member commits the offsets of the events it has processed.

    An event counts as processed when the consumer asks for the next one (or leaves the loop
    normally). The committed offset is the next offset to read.
    """

    MANUAL = "manual"
    """Only ``await event.commit()`` or ``await reader.commit(...)`` commit."""
    AFTER_EACH = "after_each"
    """One commit per event, as soon as it is processed."""
    AFTER_BATCH = "after_batch"
    """One commit per fetched batch (covering every partition in it), once all of it is processed."""
    PERIODIC = "periodic"
    """Every ``commit_interval``, if anything was processed since the last commit."""


class StartFrom(enum.StrEnum):
    """Where a new group starts reading (and where ``reset_offsets`` moves a group)."""

    EARLIEST = "earliest"
    LATEST = "latest"
    OFFSET = "offset"
    TIME = "time"


class TruncationPolicy(enum.StrEnum):
    """What a member does when retention pruned events its group had not consumed (its position is
    below the partition's first retained offset). Every case is counted and logged (see
    ``sluice.services.consumers.truncation``); the consumer is never moved silently."""

    EARLIEST = "earliest"
    """Go on from the oldest retained event; the batch (``ConsumedBatch.truncation``) says what was lost."""
    LATEST = "latest"
    """Skip to the partition's head (new events only); the next batch of the partition says so."""
    FAIL = "fail"
    """Stop: the iteration raises ConsumerTruncatedError, nothing is skipped or committed past the gap."""


class StartPosition(SluiceModel):
    """``StartPosition()`` is the earliest event; ``StartPosition(start_from=StartFrom.TIME, time=...)``
    the first event at or after a time; ``OFFSET`` applies one offset to every partition (capped at
    each partition's head)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_from: StartFrom = StartFrom.EARLIEST
    offset: Annotated[int, Field(ge=0)] | None = None
    time: datetime | None = None

    @model_validator(mode="after")
    def _has_what_it_needs(self) -> Self:
        if self.start_from is StartFrom.OFFSET and self.offset is None:
            raise ValueError("start_from=offset needs an offset")
        if self.start_from is StartFrom.TIME and self.time is None:
            raise ValueError("start_from=time needs a time")
        return self


class ConsumerGroupOptions(SluiceModel):
    """Options of one member. Kafka's defaults where they apply: session timeout 30 s, heartbeat
    every third of it, max poll interval 5 minutes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commit_strategy: OffsetCommitStrategy = OffsetCommitStrategy.AFTER_BATCH
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    commit_interval: timedelta = timedelta(seconds=5)
    session_timeout: timedelta = timedelta(seconds=30)
    heartbeat_interval: timedelta | None = None
    """Default: a third of the session timeout."""
    max_poll_interval: timedelta = timedelta(minutes=5)
    start_position: StartPosition = StartPosition()
    on_truncation: TruncationPolicy = TruncationPolicy.EARLIEST
    """When retention pruned events this group had not consumed: earliest, latest or fail."""

    @model_validator(mode="after")
    def _durations_make_sense(self) -> Self:
        for name in ("commit_interval", "session_timeout", "max_poll_interval"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.heartbeat_interval is not None and not timedelta(0) < self.heartbeat_interval < self.session_timeout:
            raise ValueError("heartbeat_interval must be positive and shorter than session_timeout")
        return self

    @property
    def effective_heartbeat_interval(self) -> timedelta:
        return self.heartbeat_interval or self.session_timeout / 3
