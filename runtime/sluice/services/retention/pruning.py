"""``prune_stream``: apply retention limits to one stream now, in bounded batches.

The operator's RetentionPolicy calls this directly with limits it read from its own resource; the
policies stored in the database go through ``apply_policies`` (applying.py), which calls it too.

Each batch deletes at most ``batch_size`` of a partition's oldest events and moves the partition's
first offset, in one short transaction of its own, so appends to the same partition wait at most
for one tiny row update (see storage/postgres/retention.py) and never for the whole prune.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sluice.core.errors import InvalidArgumentError, StreamTypeError
from sluice.core.names import validate_stream_name
from sluice.core.streams import StreamInfo, StreamType
from sluice.services.retention import metrics
from sluice.services.retention.planning import (
    DEFAULT_ACTIVE_GROUP_HORIZON,
    PartitionPlan,
    count_cutoff,
    limit_cutoff,
    plan_partition,
)
from sluice.services.retention.storage import storage_of
from sluice.store.port import RetentionStorage
from sluice.store.values.retention import GroupPosition, PruneReport, RetentionLimits

if TYPE_CHECKING:
    from sluice.store import EventStore

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
"""Events deleted per transaction: about a millisecond of work, and a small burst of WAL for the appends
that commit right after it to flush. The size of one batch sets how long an append that lands on it waits:
with bench/retention.py on 2 cores, batches of 500 raised concurrent appends' p99 1.40-1.57x and batches of
1,000 1.54-2.12x, at the same duty cycle (docs/retention.md)."""
DEFAULT_DUTY_CYCLE = 0.25
"""Retention is background work: by default it rests three times as long as it works (see
``duty_cycle``). At 2,000 events per batch and a duty cycle of 0.5, pruning ran at 104,000 events/s but
concurrent appends' p99 doubled (2.13x); a duty cycle of 0.2 did not lower the tail against 0.25
(docs/retention.md)."""


async def prune_stream(
    store: EventStore,
    stream_name: str,
    limits: RetentionLimits,
    *,
    respect_consumers: bool | None = None,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    ignore_window: bool = False,
    active_group_horizon: timedelta = DEFAULT_ACTIVE_GROUP_HORIZON,
    pause_between_batches: timedelta = timedelta(0),
    duty_cycle: float = DEFAULT_DUTY_CYCLE,
) -> PruneReport:
    """Prune ``stream_name`` down to ``limits`` and report what went.

    ``respect_consumers`` (default: ``not limits.enforce``) keeps every event an active consumer
    group has not committed past; False enforces the limits and counts the groups left behind.
    ``now`` (default: the current time) is when ``max_age`` and the cleanup window are measured.
    Outside ``limits.cleanup_window`` nothing is deleted and ``skipped_reason`` says why, unless
    ``ignore_window`` (a manual run).
    ``duty_cycle`` (0 < x <= 1) throttles a large prune: after a batch that took t seconds it rests
    ``t * (1 - x) / x``, so it keeps the disk busy at most that fraction of the time (appends share
    the WAL with it: every append's commit flushes the prune's deletes written before it).
    ``pause_between_batches`` adds a fixed rest."""
    validate_stream_name(stream_name)
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be positive, got {batch_size}")
    if not 0 < duty_cycle <= 1:
        raise InvalidArgumentError(f"duty_cycle must be in (0, 1], got {duty_cycle}")
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise InvalidArgumentError("now must be timezone-aware (UTC)")
    respect = limits.respect_consumers if respect_consumers is None else respect_consumers
    info = await store.get_stream(stream_name)
    if info.type is not StreamType.PERSISTENT:
        raise StreamTypeError(f"{stream_name!r} is a queue: retention applies to persistent streams")
    window = limits.cleanup_window
    if not ignore_window and window is not None and not window.contains(moment):
        return _skipped(info, f"outside the cleanup window {window} UTC")
    storage = storage_of(store)
    plans = await _plan(store, storage, info, limits, respect=respect, now=moment, horizon=active_group_horizon)
    pruned_events = pruned_bytes = 0
    oldest: dict[int, int] = {}
    for plan in plans:
        first = plan.first_offset
        while first < plan.cutoff:
            started = time.perf_counter()
            batch = await storage.delete_before(stream_name, plan.partition, plan.cutoff, batch_size)
            busy = time.perf_counter() - started
            if batch is None or batch.first_offset <= first:
                break  # the stream was deleted meanwhile, or another prune got there first
            first = batch.first_offset
            pruned_events += batch.events
            pruned_bytes += batch.bytes
            metrics.record_pruned(stream_name, events=batch.events, bytes_=batch.bytes)
            # Rest between batches (and let appends and readers on this event loop run: memory://).
            rest = busy * (1 - duty_cycle) / duty_cycle + pause_between_batches.total_seconds()
            await asyncio.sleep(rest)
        oldest[plan.partition] = first
    report = PruneReport(
        stream=stream_name,
        pruned_events=pruned_events,
        pruned_bytes=pruned_bytes,
        oldest_retained_offsets=oldest,
        held_back_by=sorted({group for plan in plans for group in plan.held_back_by}),
        truncated_groups=sorted({group for plan in plans for group in plan.truncated_groups}),
    )
    _announce(report, plans)
    return report


async def _plan(
    store: EventStore,
    storage: RetentionStorage,
    info: StreamInfo,
    limits: RetentionLimits,
    *,
    respect: bool,
    now: datetime,
    horizon: timedelta,
) -> list[PartitionPlan]:
    by_partition: dict[int, list[GroupPosition]] = defaultdict(list)
    for position in await storage.group_positions(info.name):
        by_partition[position.partition].append(position)
    byte_cutoffs = await storage.byte_cutoffs(info.name, limits.max_bytes) if limits.max_bytes is not None else {}
    plans = []
    for partition in info.partition_heads:
        number, first, head = partition.partition, partition.first_offset, partition.head
        age_cutoff = (
            await store.backend.log.offset_at_time(info.name, number, now - limits.max_age)
            if limits.max_age is not None
            else None
        )
        cutoff = limit_cutoff(
            first, head, (age_cutoff, count_cutoff(head, limits.max_event_count), byte_cutoffs.get(number))
        )
        plans.append(
            plan_partition(
                partition=number,
                first_offset=first,
                head=head,
                limit_cutoff=cutoff,
                groups=by_partition.get(number, []),
                respect_consumers=respect,
                now=now,
                horizon=horizon,
            )
        )
    return plans


def _announce(report: PruneReport, plans: list[PartitionPlan]) -> None:
    for plan in plans:
        for group in plan.truncated_groups:
            metrics.record_truncation(report.stream, group)
            logger.warning(
                "retention truncated consumer group %s of %s: partition %s now starts at offset %s, past the "
                "group's committed offset; the group's members are told when they next read",
                group,
                report.stream,
                plan.partition,
                report.oldest_retained_offsets.get(plan.partition, plan.cutoff),
            )
    if report.pruned_events:
        logger.info(
            "retention pruned %s events (%s bytes) of %s; oldest retained offsets %s",
            report.pruned_events,
            report.pruned_bytes,
            report.stream,
            report.oldest_retained_offsets,
        )
    if report.held_back_by:
        logger.info("retention of %s was held back by consumer groups %s", report.stream, report.held_back_by)


def _skipped(info: StreamInfo, reason: str) -> PruneReport:
    return PruneReport(
        stream=info.name,
        pruned_events=0,
        pruned_bytes=0,
        oldest_retained_offsets={partition.partition: partition.first_offset for partition in info.partition_heads},
        held_back_by=[],
        skipped_reason=reason,
    )
