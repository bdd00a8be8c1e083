"""``projection_status``: what the operator writes into a Projection's status — position, lag, rebuild
progress, active version and reset generation — read from the checkpoint store and the sources."""

from __future__ import annotations

from datetime import UTC, datetime

from sluice.errors import ProjectionNotFoundError
from sluice.projections.checkpoints import CheckpointStore
from sluice.projections.runner import default_checkpoint_store
from sluice.projections.sources import SourceReader
from sluice.projections.state import ProjectionStatus
from sluice.store import EventStore

__all__ = ["ProjectionStatus", "projection_status"]
"""``ProjectionStatus`` itself lives in ``state.py`` (pure data, which the operator's reconcile logic reads)."""


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
