"""``apply_policies``: prune every stream by the stored policy that applies to it.

For each persistent stream the most specific policy wins (patterns.py). A policy runs only inside
its cleanup window (unless ``ignore_window``); with ``due_only`` (what the worker passes) it also
runs at most once per cleanup interval, across every process sharing the store: the run is claimed
in storage before any stream is pruned.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice.core.errors import InvalidArgumentError, SluiceError
from sluice.core.names import validate_stream_name
from sluice.core.streams import StreamType
from sluice.services.retention.pruning import DEFAULT_BATCH_SIZE, prune_stream
from sluice.services.retention.storage import storage_of
from sluice.store.port import RetentionStorage
from sluice.store.values.retention import PruneReport, RetentionPolicy
from sluice.store.values.retention_patterns import most_specific

if TYPE_CHECKING:
    from sluice.store import EventStore

logger = logging.getLogger(__name__)


async def apply_policies(
    store: EventStore,
    now: datetime | None = None,
    ignore_window: bool = False,
    *,
    stream: str | None = None,
    due_only: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[PruneReport]:
    """Prune each persistent stream (or only ``stream``) by its policy; one report per stream that
    has a policy (``skipped_reason`` set for those outside their window or not due). With
    ``stream``, errors are raised; otherwise a failing stream is logged and the others go on."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise InvalidArgumentError("now must be timezone-aware (UTC)")
    if stream is not None:
        validate_stream_name(stream)
    storage = storage_of(store)
    policies = await storage.list_policies()
    if not policies:
        return []
    if stream is not None:
        names = [stream]
    else:
        names = [info.name for info in await store.list_streams() if info.type is StreamType.PERSISTENT]
    reports: list[PruneReport] = []
    for policy, covered in _streams_by_policy(policies, names):
        reason = await _reason_to_skip(storage, policy, moment, ignore_window=ignore_window, due_only=due_only)
        if reason is not None:
            reports.extend(_skipped(name, reason) for name in covered)
            continue
        for name in covered:
            try:
                report = await prune_stream(
                    store, name, policy.limits, now=moment, ignore_window=True, batch_size=batch_size
                )
            except SluiceError as error:
                if stream is not None:
                    raise
                logger.warning("retention of %s (policy %s) failed: %s", name, policy.pattern, error)
                continue
            reports.append(report)
    return reports


def _streams_by_policy(policies: list[RetentionPolicy], names: list[str]) -> list[tuple[RetentionPolicy, list[str]]]:
    """Each policy with the streams it is the most specific match for (policies matching none left out)."""
    covered: dict[str, list[str]] = defaultdict(list)
    by_pattern = {policy.pattern: policy for policy in policies}
    for name in names:
        policy = most_specific(policies, name)
        if policy is not None:
            covered[policy.pattern].append(name)
    return [(by_pattern[pattern], covered[pattern]) for pattern in sorted(covered)]


async def _reason_to_skip(
    storage: RetentionStorage, policy: RetentionPolicy, moment: datetime, *, ignore_window: bool, due_only: bool
) -> str | None:
    window = policy.limits.cleanup_window
    if not ignore_window and window is not None and not window.contains(moment):
        return f"outside the cleanup window {window} UTC"
    if due_only and not await storage.claim_policy_run(policy.pattern, moment):
        return "not due: the policy ran less than its cleanup interval ago"
    return None


def _skipped(stream: str, reason: str) -> PruneReport:
    return PruneReport(
        stream=stream,
        pruned_events=0,
        pruned_bytes=0,
        oldest_retained_offsets={},
        held_back_by=[],
        skipped_reason=reason,
    )
