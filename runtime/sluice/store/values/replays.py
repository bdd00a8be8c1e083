"""What a replay is (``ReplayRequest``) and how far it has come (``ReplayProgress``).

A request names the source stream (all or some partitions), where to start (an offset or a time) and
where the events go (a handler, a consumer group, a projection or another stream). The end is fixed
when the replay starts: the heads of the replayed partitions at that moment, which fixes ``total``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from sluice.core.errors import InvalidNameError
from sluice.core.names import validate_group_id, validate_stream_name
from sluice.core.validation import SluiceModel

MAXIMUM_BATCH_SIZE = 100_000
"""The largest batch a replay reads and delivers at once (the Replay resource allows as much)."""

REPLAY_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,329}")
"""Replay names: the characters of stream names, up to 330 of them, so that the operator's
``<namespace>.<name>.<uid prefix>`` always fits (63 + 253 + 8 characters and two dots)."""


def validate_replay_name(name: object) -> str:
    """Return ``name`` if it is a valid replay name, else raise InvalidNameError."""
    if not isinstance(name, str) or REPLAY_NAME_PATTERN.fullmatch(name) is None:
        raise InvalidNameError(
            f"invalid replay name {name!r}: use 1-330 characters from letters, digits, '.', '_', ':' "
            "and '-', starting with a letter or digit"
        )
    return name


class ReplayState(enum.StrEnum):
    """Where a replay is. ``pending``: recorded but not running (never started, or interrupted and
    resumable); ``running``; then one of ``succeeded``, ``failed`` (resumable) or ``cancelled``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def resumable(self) -> bool:
        """A replay in this state continues from its recorded position when it is started again."""
        return self in (ReplayState.PENDING, ReplayState.RUNNING, ReplayState.FAILED)


class ReplayTargetKind(enum.StrEnum):
    """Where replayed events go."""

    HANDLER = "handler"
    """An async callable, given each batch (library use only: a handler cannot be stored)."""
    CONSUMER_GROUP = "consumer_group"
    """A consumer group: its committed offsets are reset (fencing its members), so it reads again."""
    PROJECTION = "projection"
    """A projection: reset and rebuilt from the source."""
    STREAM = "stream"
    """Another stream: appended with deterministic event ids, so a resumed replay never duplicates."""


class ReplayRequest(SluiceModel):
    """One replay: ``name`` identifies it (starting a name that exists resumes it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    stream: str
    """The source stream."""
    partitions: tuple[int, ...] | None = None
    """Only these partitions of the source; every partition when None."""
    from_offset: Annotated[int, Field(ge=0)] | None = None
    """Replay from this offset in every partition replayed (capped at each partition's head)."""
    from_time: datetime | None = None
    """Replay from the first event stored at or after this time (timezone-aware)."""
    target: ReplayTargetKind
    target_name: str | None = None
    """The consumer group, projection or stream; a label for a handler (optional)."""
    rate_limit: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """At most this many events per second (a finite number); unlimited when None. May change when resuming."""
    batch_size: Annotated[int, Field(ge=1, le=MAXIMUM_BATCH_SIZE)] = 500
    """Events read and delivered per batch. May change when resuming."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return validate_replay_name(value)

    @field_validator("stream")
    @classmethod
    def _valid_stream(cls, value: str) -> str:
        return validate_stream_name(value)

    @field_validator("partitions")
    @classmethod
    def _valid_partitions(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if not value or any(partition < 0 for partition in value) or len(set(value)) != len(value):
            raise ValueError("give distinct partitions, each >= 0 (or None for every partition)")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.from_offset is None) == (self.from_time is None):
            raise ValueError("give exactly one of from_offset or from_time")
        if self.from_time is not None and self.from_time.utcoffset() is None:
            raise ValueError("from_time must carry a timezone (for example 2026-01-01T00:00:00Z)")
        if self.target is ReplayTargetKind.HANDLER:
            if self.target_name is not None:
                validate_group_id(self.target_name, "handler label")
        elif self.target_name is None:
            raise ValueError(f"a {self.target.value} target needs target_name")
        elif self.target is ReplayTargetKind.STREAM:
            validate_stream_name(self.target_name)
        else:
            validate_group_id(self.target_name, f"{self.target.value} name")
        return self

    def definition(self) -> dict[str, Any]:
        """What may not change between runs of one replay (rate limit and batch size may)."""
        return {
            "stream": self.stream,
            "partitions": list(self.partitions) if self.partitions is not None else None,
            "from_offset": self.from_offset,
            "from_time": self.from_time.isoformat() if self.from_time is not None else None,
            "target": self.target.value,
            "target_name": self.target_name,
        }

    @classmethod
    def from_definition(
        cls, name: str, definition: dict[str, Any], *, rate_limit: float | None, batch_size: int
    ) -> ReplayRequest:
        """The request a stored definition describes (for resuming by name)."""
        partitions = definition.get("partitions")
        from_time = definition.get("from_time")
        return cls(
            name=name,
            stream=definition["stream"],
            partitions=tuple(partitions) if partitions is not None else None,
            from_offset=definition.get("from_offset"),
            from_time=datetime.fromisoformat(from_time) if from_time is not None else None,
            target=ReplayTargetKind(definition["target"]),
            target_name=definition.get("target_name"),
            rate_limit=rate_limit,
            batch_size=batch_size,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionProgress:
    """One replayed partition: from ``start_offset`` up to ``end_offset`` (exclusive, the head when
    the replay started); everything before ``next_offset`` has been delivered."""

    partition: int
    start_offset: int
    next_offset: int
    end_offset: int

    @property
    def events_done(self) -> int:
        return self.next_offset - self.start_offset

    @property
    def events_total(self) -> int:
        return self.end_offset - self.start_offset

    @property
    def finished(self) -> bool:
        return self.next_offset >= self.end_offset


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayProgress:
    """A replay as recorded: its request, state, positions and timing. ``percent`` and ``eta`` are
    computed from the positions and the measured rate."""

    request: ReplayRequest
    state: ReplayState
    partitions: tuple[PartitionProgress, ...]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    events_per_second: float | None = None
    """The delivery rate measured by the current (or last) run."""
    cancel_requested: bool = False
    target_prepared: bool = False
    """For a consumer-group target: the group's offsets were reset (never done twice)."""
    run_epoch: int = 0
    error: str | None = None

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def events_done(self) -> int:
        return sum(partition.events_done for partition in self.partitions)

    @property
    def events_total(self) -> int:
        return sum(partition.events_total for partition in self.partitions)

    @property
    def percent(self) -> int:
        """Whole percent done (100 for a replay with nothing to do)."""
        total = self.events_total
        return 100 if total == 0 else min(100, self.events_done * 100 // total)

    @property
    def eta(self) -> timedelta | None:
        """Time left at the measured rate: None before a rate is known or once the replay stopped."""
        if self.state is not ReplayState.RUNNING:
            return None
        remaining = self.events_total - self.events_done
        if remaining <= 0:
            return timedelta(0)
        if not self.events_per_second:
            return None
        return timedelta(seconds=remaining / self.events_per_second)

    @property
    def estimated_completion(self) -> datetime | None:
        """When the replay should finish, counted from its last recorded progress."""
        eta = self.eta
        return None if eta is None else self.updated_at + eta

    @property
    def finished(self) -> bool:
        return not self.state.resumable
