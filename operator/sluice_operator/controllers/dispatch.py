"""Reconciling one object by kind and name: re-read it under its lock, run its kind's reconciler, count it.

Each reconcile is counted by result and timed (``sluice_operator_reconcile_duration_seconds``).
Reading the object again (instead of trusting the event that woke us) makes every reconcile level-triggered:
whatever happened before, the latest object is what gets reconciled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sluice_operator.controllers.consumer_groups import LagObservation, reconcile_consumer_group
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.event_streams import reconcile_event_stream
from sluice_operator.controllers.projections import reconcile_projection
from sluice_operator.controllers.replays import reconcile_replay
from sluice_operator.controllers.retention_policies import reconcile_retention_policy
from sluice_operator.metrics import RECONCILE_SECONDS, RECONCILES, forget_resource

__all__ = ["RECONCILERS", "reconcile_named"]

logger = logging.getLogger(__name__)

Reconciler = Callable[[OperatorContext, Mapping[str, Any]], Awaitable[None]]
RECONCILERS: dict[str, Reconciler] = {
    "EventStream": reconcile_event_stream,
    "ConsumerGroup": reconcile_consumer_group,
    "Projection": reconcile_projection,
    "Replay": reconcile_replay,
    "RetentionPolicy": reconcile_retention_policy,
}


async def reconcile_named(
    context: OperatorContext,
    kind: str,
    namespace: str,
    name: str,
    *,
    lag: LagObservation | None = None,
) -> None:
    """Reconcile the object if it still exists (and is not being deleted). Errors propagate, counted."""
    async with context.exclusive(kind, namespace, name):
        body = await context.kubernetes.get_custom_object(kind, namespace, name)
        if body is None:
            context.forget(kind, namespace, name)
            forget_resource(kind, namespace, name)
            return
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return
        started_at = time.monotonic()
        try:
            if kind == "ConsumerGroup":
                await reconcile_consumer_group(context, body, lag=lag)
            else:
                await RECONCILERS[kind](context, body)
        except Exception:
            RECONCILES.labels(kind=kind, result="error").inc()
            raise
        finally:
            RECONCILE_SECONDS.labels(kind=kind).observe(time.monotonic() - started_at)
        RECONCILES.labels(kind=kind, result="ok").inc()
