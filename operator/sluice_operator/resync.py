"""The periodic resync: every interval, reconcile every object again and poll consumer-group lag.

Change handlers react to spec changes; this loop catches everything else: a child deleted or edited behind
the operator's back, a database that went away or came back, pods that became ready, and lag. Lag is read
once per stream for all of its groups (``poll_stream_lag``), not once per group. Each pass also removes the
metrics of objects that are gone (a deletion reaches no reconcile).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from sluice_operator.controllers.consumer_groups import LagObservation, poll_stream_lag
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.dispatch import RECONCILERS, reconcile_named
from sluice_operator.metrics import (
    CONSUMER_GROUP_LAG_EVENTS,
    CONSUMER_GROUP_LAG_SECONDS,
    forget_resources_not_listed,
)

__all__ = ["resync_forever", "resync_once"]

logger = logging.getLogger(__name__)


async def resync_forever(context: OperatorContext) -> None:
    """Resync, sleep the interval, repeat until cancelled; one failing pass never stops the loop."""
    while True:
        try:
            await resync_once(context)
        except Exception:
            logger.exception("resync pass failed; trying again in %s s", context.settings.resync_interval_seconds)
        await asyncio.sleep(context.settings.resync_interval_seconds)


async def resync_once(context: OperatorContext) -> None:
    for namespace in context.namespaces or (None,):
        for kind in RECONCILERS:
            if kind == "ConsumerGroup":
                listed = await _resync_consumer_groups(context, namespace)
            else:
                listed = set()
                for body in await context.kubernetes.list_custom_objects(kind, namespace):
                    metadata = body["metadata"]
                    listed.add((metadata["namespace"], metadata["name"]))
                    await _reconcile_logged(context, kind, metadata["namespace"], metadata["name"])
            forget_resources_not_listed(kind, namespace, listed)


async def _reconcile_logged(
    context: OperatorContext, kind: str, namespace: str, name: str, *, lag: LagObservation | None = None
) -> None:
    try:
        await reconcile_named(context, kind, namespace, name, lag=lag)
    except Exception:
        logger.exception("reconciling %s %s/%s failed", kind, namespace, name)


async def _resync_consumer_groups(context: OperatorContext, namespace: str | None) -> set[tuple[str, str]]:
    """Poll lag and reconcile every ConsumerGroup; returns the (namespace, name) of those listed."""
    groups_by_stream: dict[tuple[str, str], list[str]] = defaultdict(list)
    listed: set[tuple[str, str]] = set()
    for body in await context.kubernetes.list_custom_objects("ConsumerGroup", namespace):
        metadata = body["metadata"]
        listed.add((metadata["namespace"], metadata["name"]))
        stream_name = ((body.get("spec") or {}).get("streamRef") or {}).get("name", "")
        groups_by_stream[(metadata["namespace"], stream_name)].append(metadata["name"])
    for (group_namespace, stream_name), group_names in groups_by_stream.items():
        try:
            lags = await poll_stream_lag(context, group_namespace, stream_name, group_names)
        except Exception:
            logger.exception("polling lag of the groups of %s/%s failed", group_namespace, stream_name)
            lags = {}
        for group_name in group_names:
            lag = lags.get(group_name)
            description = lag.description if lag is not None else None
            if description is not None:
                CONSUMER_GROUP_LAG_EVENTS.labels(namespace=group_namespace, consumer_group=group_name).set(
                    description.lag_events
                )
                CONSUMER_GROUP_LAG_SECONDS.labels(namespace=group_namespace, consumer_group=group_name).set(
                    description.lag_seconds
                )
            await _reconcile_logged(context, "ConsumerGroup", group_namespace, group_name, lag=lag)
    return listed
