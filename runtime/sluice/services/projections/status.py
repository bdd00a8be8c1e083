"""``projection_status``: what the operator writes into a Projection's status — position, lag, rebuild
progress, active version and reset generation — read from the checkpoint store and the sources."""

from __future__ import annotations

from datetime import UTC, datetime

from sluice.core.errors import InvalidArgumentError, ProjectionNotFoundError
from sluice.services.projections.projection import validate_projection_name
from sluice.services.projections.runner import default_checkpoint_store
from sluice.services.projections.sources import SourceReader
from sluice.store import EventStore
from sluice.store.contracts.projection_checkpoints import CheckpointStore
from sluice.store.values.projections import ProjectionDeadLetter, ProjectionStatus

MAXIMUM_DEAD_LETTERS_LISTED = 10_000

__all__ = ["ProjectionDeadLetter", "ProjectionStatus", "projection_dead_letters", "projection_status"]
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
        dead_letters=state.active.events_dead_lettered,
    )


async def projection_dead_letters(
    store: EventStore, name: str, *, limit: int = 100, checkpoints: CheckpointStore | None = None
) -> list[ProjectionDeadLetter]:
    """The events the active version of projection ``name`` could not apply, with the reasons, oldest
    first (at most ``limit``). Raises ProjectionNotFoundError when it has never run there."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAXIMUM_DEAD_LETTERS_LISTED:
        raise InvalidArgumentError(f"limit must be an integer from 1 to {MAXIMUM_DEAD_LETTERS_LISTED}")
    checkpoint_store = checkpoints if checkpoints is not None else default_checkpoint_store(store)
    return await checkpoint_store.dead_letters(validate_projection_name(name), limit=limit)
