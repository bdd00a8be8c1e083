"""``projection_status``: what the operator writes into a Projection's status — position, lag, rebuild
progress, active version and reset generation — read from the checkpoint store and the sources."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from sluice.errors import ProjectionNotFoundError
from sluice.events import GlobalPosition
from sluice.projections.checkpoints import CheckpointStore
from sluice.projections.runner import default_checkpoint_store
from sluice.projections.sources import SourceReader
from sluice.projections.state import RebuildProgress
from sluice.store import EventStore


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

    def to_manifest(self) -> dict[str, Any]:
        """The runtime's part of the operator's ProjectionStatus, camelCase with JSON values: ``position``
        (left out before the first event), ``lag`` and ``rebuild`` (left out when there never was one)."""
        manifest: dict[str, Any] = {
            "lag": {
                "events": self.lag_events,
                "seconds": round(self.lag_seconds, 3),
                "observedAt": self.observed_at.isoformat(),
            }
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


async def projection_status(
    store: EventStore, name: str, *, checkpoints: CheckpointStore | None = None
) -> ProjectionStatus:
    """The status of projection ``name`` in ``store`` (its PostgreSQL checkpoints by default).
    Raises ProjectionNotFoundError when it has never run there."""
    checkpoint_store = checkpoints if checkpoints is not None else default_checkpoint_store(store)
    state = await checkpoint_store.load(name)
    if state is None:
        raise ProjectionNotFoundError(name)
    behind = await SourceReader(store, state.sources).behind(state.position)
    return ProjectionStatus(
        name=state.name,
        sources=state.sources,
        position=state.position,
        lag_events=behind.events,
        lag_seconds=behind.seconds,
        active_version=state.active_version,
        reset_generation=state.reset_generation,
        rebuild=state.rebuild,
        observed_at=datetime.now(UTC),
    )
