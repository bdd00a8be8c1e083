"""Projections: read models kept up to date from one or more streams, with checkpoints.

    summary = Projection("order-summary", sources=["orders"], options=ProjectionOptions(batch_size=100))

    @summary.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        await context.require_connection().execute(
            "INSERT INTO order_summary (order_id, total) VALUES ($1, $2)", event.data["order_id"], ...
        )

    runner = ProjectionRunner(summary, store)
    await runner.run()            # until runner.stop(); or: await runner.run_until_caught_up()

On PostgreSQL the handler's writes through ``context.connection`` commit with the checkpoint
(effectively once); otherwise delivery is at least once and ``event.event_id`` keeps handlers idempotent.
``sql_projection`` builds a projection from the operator's declarative SQL target. See docs/projections.md.
The PostgreSQL checkpoint store is the adapter's (``store.backend.database.projection_checkpoints()``,
``sluice.storage.postgres.projection_checkpoints.PostgresCheckpointStore``): ``default_checkpoint_store``
picks it.
"""

from sluice.services.projections.context import ProjectionContext
from sluice.services.projections.memory_checkpoints import MemoryCheckpointStore
from sluice.services.projections.options import ProjectionOptions, ProjectionStart
from sluice.services.projections.projection import BatchHandler, EventHandler, Hook, Projection
from sluice.services.projections.rebuild_requests import request_rebuild
from sluice.services.projections.runner import ProjectionRunner, default_checkpoint_store
from sluice.services.projections.sql_target import SqlTarget, SqlUpsert, parse_sql_target, sql_projection
from sluice.services.projections.status import (
    ProjectionDeadLetter,
    ProjectionStatus,
    projection_dead_letters,
    projection_status,
)
from sluice.store.contracts.projection_checkpoints import CheckpointStore
from sluice.store.values.projections import ProjectionState, RebuildPhase, RebuildProgress, VersionCheckpoint

__all__ = [
    "BatchHandler",
    "CheckpointStore",
    "EventHandler",
    "Hook",
    "MemoryCheckpointStore",
    "Projection",
    "ProjectionContext",
    "ProjectionDeadLetter",
    "ProjectionOptions",
    "ProjectionRunner",
    "ProjectionStart",
    "ProjectionState",
    "ProjectionStatus",
    "RebuildPhase",
    "RebuildProgress",
    "SqlTarget",
    "SqlUpsert",
    "VersionCheckpoint",
    "default_checkpoint_store",
    "parse_sql_target",
    "projection_dead_letters",
    "projection_status",
    "request_rebuild",
    "sql_projection",
]
