"""What the checkpoint stores keep per projection (versions with their positions, and the rebuild), and
the status the operator reports (pure data: no store, no database)."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import datetime
from typing import Any

from sluice.core.events import GlobalPosition


class RebuildPhase(enum.Enum):
    """Where a rebuild stands (the operator's RebuildStatus phases)."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"


@dataclasses.dataclass(frozen=True, slots=True)
class VersionCheckpoint:
    """How far one read-model version has come: the last event applied (None: none yet)."""

    version: int
    position: GlobalPosition | None
    events_applied: int = 0
    events_dead_lettered: int = 0
    """Events of the sources this version could not apply (``ProjectionDeadLetter``): passed, recorded."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionDeadLetter:
    """An event a version of a projection could not apply, and why (recorded, never silently dropped:
    the checkpoint moves past it in the same transaction, so the projection goes on)."""

    version: int
    position: GlobalPosition
    stream_name: str
    partition: int
    offset: int
    event_id: uuid.UUID
    event_type: str
    reason: str
    dead_lettered_at: datetime | None = None
    """When it was recorded (None until it is)."""


def merge_dead_letters(letters: list[ProjectionDeadLetter]) -> list[ProjectionDeadLetter]:
    """One letter per version and event, with every reason (several upserts of one event may fail)."""
    merged: dict[tuple[int, GlobalPosition], ProjectionDeadLetter] = {}
    for letter in letters:
        key = (letter.version, letter.position)
        earlier = merged.get(key)
        merged[key] = (
            letter if earlier is None else dataclasses.replace(earlier, reason=f"{earlier.reason}; {letter.reason}")
        )
    return list(merged.values())


@dataclasses.dataclass(frozen=True, slots=True)
class RebuildProgress:
    """A rebuild: ``done`` events replayed of ``total`` (the sources' events when it started)."""

    version: int
    blue_green: bool
    done: int
    total: int
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def phase(self) -> RebuildPhase:
        return RebuildPhase.SUCCEEDED if self.finished_at is not None else RebuildPhase.RUNNING

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> int:
        """done as a whole percentage of total (100 once finished, or when there was nothing to replay)."""
        if not self.running or self.total <= 0:
            return 100
        return min(100, self.done * 100 // self.total)


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionState:
    """One projection as its checkpoint store knows it."""

    name: str
    sources: tuple[str, ...]
    active_version: int
    reset_generation: int
    checkpoints: dict[int, VersionCheckpoint]
    rebuild: RebuildProgress | None = None
    rebuild_requested: bool = False
    """Someone called ``request_rebuild``; the runner starts one (which clears this) when it sees it."""

    @property
    def active(self) -> VersionCheckpoint:
        return self.checkpoints[self.active_version]

    @property
    def position(self) -> GlobalPosition | None:
        """The last event applied to the active version."""
        return self.active.position

    @property
    def building_version(self) -> int | None:
        """The version a running blue/green rebuild is building beside the active one."""
        rebuild = self.rebuild
        if rebuild is not None and rebuild.running and rebuild.version != self.active_version:
            return rebuild.version
        return None

    def running_versions(self) -> list[int]:
        """The versions kept up to date: the active one, and the one a blue/green rebuild builds."""
        building = self.building_version
        return [self.active_version] if building is None else [self.active_version, building]


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """A projection as observed at ``observed_at``."""

    name: str
    sources: tuple[str, ...]
    position: GlobalPosition | None
    """The last event applied to the active version (None: none yet)."""
    lag_events: int
    """Events of the sources not yet applied to the active version."""
    lag_seconds: float
    """Age of the oldest of those events (0 when caught up)."""
    active_version: int
    reset_generation: int
    rebuild: RebuildProgress | None
    observed_at: datetime
    dead_letters: int = 0
    """Events the active version could not apply (recorded as ``ProjectionDeadLetter``)."""

    def to_manifest(self) -> dict[str, Any]:
        """The runtime's part of the operator's ProjectionStatus, camelCase with JSON values: ``position``
        (left out before the first event), ``lag``, ``deadLetters`` and ``rebuild`` (left out when there
        never was one)."""
        manifest: dict[str, Any] = {
            "lag": {
                "events": self.lag_events,
                "seconds": round(self.lag_seconds, 3),
                "observedAt": self.observed_at.isoformat(),
            },
            "deadLetters": self.dead_letters,
        }
        if self.position is not None:
            manifest["position"] = str(self.position)
        if self.rebuild is not None:
            rebuild = self.rebuild
            manifest["rebuild"] = {
                "phase": rebuild.phase.value,
                "eventsDone": min(rebuild.done, rebuild.total) if rebuild.running else rebuild.done,
                "eventsTotal": rebuild.total,
                "percent": rebuild.percent,
            }
        return manifest
