"""``request_rebuild``: ask a projection that runs elsewhere (a ``sluice project`` pod) to rebuild from the
start of its sources, without its code: the request is recorded with its checkpoints, and its runner starts
the rebuild (blue/green when the projection supports it) within one poll interval, or when it next starts.
This is what a replay into a projection needs."""

from __future__ import annotations

from sluice.services.projections.projection import validate_projection_name
from sluice.services.projections.runner import default_checkpoint_store
from sluice.store import EventStore
from sluice.store.contracts.projection_checkpoints import CheckpointStore


async def request_rebuild(store: EventStore, name: str, *, checkpoints: CheckpointStore | None = None) -> None:
    """Record a rebuild request for projection ``name`` in ``store`` (its PostgreSQL checkpoints by
    default). Raises ProjectionNotFoundError when the projection never ran there."""
    checkpoint_store = checkpoints if checkpoints is not None else default_checkpoint_store(store)
    await checkpoint_store.request_rebuild(validate_projection_name(name))
