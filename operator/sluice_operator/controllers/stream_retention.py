"""Applying an EventStream's own ``spec.retention``: every ``SLUICE_OPERATOR_RETENTION_INTERVAL_SECONDS``,
inside its cleanup window, through the runtime's ``prune_stream``. RetentionPolicies (many streams, a cron
schedule) are reconciled in ``controllers.retention_policies``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.core.errors import SluiceError
from sluice.core.streams import StreamType
from sluice.services.retention import PruneReport, prune_stream
from sluice.store import EventStore
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.retention_policies import PRUNE_TIMEOUT_SECONDS, parse_timestamp
from sluice_operator.errors import DatabaseUnavailableError
from sluice_operator.models.event_streams import EventStream
from sluice_operator.reconcile.databases import DatabaseTarget
from sluice_operator.reconcile.retention_limits import runtime_limits
from sluice_operator.reconcile.retention_schedule import in_cleanup_window

__all__ = ["apply_stream_retention"]

logger = logging.getLogger(__name__)


async def apply_stream_retention(
    context: OperatorContext, stream: EventStream, target: DatabaseTarget, status: Mapping[str, Any]
) -> dict[str, Any]:
    """Prune the stream when its retention is due; the status fields of the run, or none when it did not run."""
    retention = stream.spec.retention
    if retention is None or stream.spec.type.value != StreamType.PERSISTENT.value:
        return {}
    now = datetime.now(UTC)
    last_run = parse_timestamp(status.get("lastPruneTime"))
    interval = timedelta(seconds=context.settings.retention_interval_seconds)
    if (last_run is not None and now - last_run < interval) or not in_cleanup_window(retention.cleanup_window, now):
        return {}
    limits = runtime_limits(retention)

    async def prune(store: EventStore) -> PruneReport:
        return await prune_stream(store, stream.stream_name, limits, now=now, ignore_window=True)

    try:
        report = await context.databases.run(target, prune, timeout_seconds=PRUNE_TIMEOUT_SECONDS)
    except (DatabaseUnavailableError, SluiceError) as error:
        logger.warning(
            "applying the retention of stream %r failed (retried next interval): %s", stream.stream_name, error
        )
        return {}
    return {"lastPruneTime": now.isoformat(), "prunedEvents": report.pruned_events, "heldBackBy": report.held_back_by}
