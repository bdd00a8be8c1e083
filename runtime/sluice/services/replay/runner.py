"""One run of a replay: deliver batches (or watch a consumer group catch up), recording progress
after each, until the end fixed at the start, a cancel request, an error or task cancellation.

Recording after delivery makes a crash cost at most one batch delivered twice: a stream target
dedupes it by event id; a handler sees it again (at least once). Each record is conditional on the
run's epoch, so a superseded run stops at its next batch. Task cancellation records the replay as
``cancelled`` when a cancel was requested, else as ``pending`` (interrupted, resumable).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sluice.core.errors import ReplayConflictError, ReplayFailedError
from sluice.services.projections.rebuild_requests import request_rebuild
from sluice.services.projections.runner import default_checkpoint_store
from sluice.services.projections.status import projection_status
from sluice.services.replay.rate_limit import TokenBucket
from sluice.services.replay.targets import BatchTarget
from sluice.store import EventStore
from sluice.store.contracts.replays import ReplayRecords
from sluice.store.values.consumer_group_options import StartFrom, StartPosition
from sluice.store.values.replays import PartitionProgress, ReplayProgress, ReplayState

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[ReplayProgress], None]
"""Called after each recorded step with the replay's progress (for progress bars and logs)."""

DEFAULT_GROUP_POLL_SECONDS = 1.0
"""How often a consumer-group replay looks at the group's committed offsets."""


class _RateMeter:
    """Events per second delivered by this run."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._events = 0

    def add(self, count: int) -> None:
        self._events += count

    @property
    def rate(self) -> float | None:
        elapsed = time.monotonic() - self._started
        return self._events / elapsed if self._events and elapsed > 0 else None


@dataclasses.dataclass
class ReplayRun:
    """A started run: the store, the records, the run's epoch and its last known progress."""

    store: EventStore
    records: ReplayRecords
    progress: ReplayProgress
    on_progress: ProgressCallback | None = None
    cancel_observed: bool = False

    @property
    def name(self) -> str:
        return self.progress.name

    async def record(self, positions: dict[int, int], rate: float | None) -> bool:
        """Record new positions; returns whether a cancel was requested."""
        cancel = await self.records.advance(self.name, self.progress.run_epoch, positions, rate)
        partitions = tuple(
            dataclasses.replace(
                partition,
                next_offset=min(max(partition.next_offset, positions[partition.partition]), partition.end_offset),
            )
            if partition.partition in positions
            else partition
            for partition in self.progress.partitions
        )
        self.progress = dataclasses.replace(
            self.progress,
            partitions=partitions,
            events_per_second=rate,
            updated_at=datetime.now(UTC),
            cancel_requested=cancel,
        )
        self.cancel_observed = self.cancel_observed or cancel
        if self.on_progress is not None:
            self.on_progress(self.progress)
        return cancel

    async def finish(self, state: ReplayState, error: str | None = None) -> ReplayProgress:
        updated_at, finished_at = await self.records.finish(self.name, self.progress.run_epoch, state, error)
        self.progress = dataclasses.replace(
            self.progress, state=state, error=error, updated_at=updated_at, finished_at=finished_at
        )
        if self.on_progress is not None:
            self.on_progress(self.progress)
        return self.progress

    async def execute(self, body: Awaitable[ReplayState]) -> ReplayProgress:
        """Await ``body`` (which returns the final state) and record how it ended."""
        try:
            state = await body
        except asyncio.CancelledError:
            # Shielded: the record must be written even though this task is being cancelled.
            ending = ReplayState.CANCELLED if self.cancel_observed else ReplayState.PENDING
            try:
                await asyncio.shield(self.finish(ending, None if self.cancel_observed else "interrupted"))
            except Exception:  # superseded meanwhile, or the database is gone: nothing more to record
                logger.warning("replay %s: could not record its interruption", self.name, exc_info=True)
            raise
        except ReplayConflictError:
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            try:
                await self.finish(ReplayState.FAILED, reason)
            except Exception:  # the database may be what failed: the run stays resumable as it is
                logger.warning("replay %s: could not record its failure", self.name, exc_info=True)
            raise ReplayFailedError(self.name, reason) from error
        return await self.finish(state)


async def replay_batches(run: ReplayRun, target: BatchTarget) -> ReplayState:
    """Read each unfinished partition batch by batch (round robin) and deliver to ``target``."""
    request = run.progress.request
    bucket = TokenBucket(request.rate_limit) if request.rate_limit is not None else None
    batch_limit = min(request.batch_size, bucket.batch_limit) if bucket is not None else request.batch_size
    meter = _RateMeter()
    while True:
        unfinished = [partition for partition in run.progress.partitions if not partition.finished]
        if not unfinished:
            return ReplayState.SUCCEEDED
        for partition in unfinished:
            count = min(batch_limit, partition.end_offset - partition.next_offset)
            if bucket is not None:
                await bucket.acquire(count)
            events = [
                event
                async for event in run.store.read_stream(
                    request.stream, from_offset=partition.next_offset, limit=count, partition=partition.partition
                )
                if event.offset < partition.end_offset
            ]
            if events:
                await target.deliver(events)
                meter.add(len(events))
            # No event left below the end means retention removed the rest: the partition is done.
            next_offset = events[-1].offset + 1 if events else partition.end_offset
            if await run.record({partition.partition: next_offset}, meter.rate):
                return ReplayState.CANCELLED


def _group_position(request_offset: int | None, request_time: datetime | None) -> StartPosition:
    if request_offset is not None:
        return StartPosition(start_from=StartFrom.OFFSET, offset=request_offset)
    return StartPosition(start_from=StartFrom.TIME, time=request_time)


async def replay_to_group(run: ReplayRun, *, poll_seconds: float = DEFAULT_GROUP_POLL_SECONDS) -> ReplayState:
    """Reset the group's offsets once (fencing its members, which resume from there), then follow
    its committed offsets until they reach the end fixed at the start."""
    request = run.progress.request
    group_id = request.target_name
    assert group_id is not None
    reader = run.store.consumer_groups()
    if not run.progress.target_prepared:
        await reader.reset_offsets(
            request.stream, group_id, to=_group_position(request.from_offset, request.from_time), force=True
        )
        await run.records.mark_target_prepared(run.name, run.progress.run_epoch)
        run.progress = dataclasses.replace(run.progress, target_prepared=True)
    started = time.monotonic()
    first_done = run.progress.events_done
    while True:
        description = await reader.describe(request.stream, group_id)
        committed = {partition.partition: partition.committed_offset for partition in description.partitions}
        positions = {
            partition.partition: _clamp(committed.get(partition.partition, partition.start_offset), partition)
            for partition in run.progress.partitions
        }
        done = sum(positions[partition.partition] - partition.start_offset for partition in run.progress.partitions)
        elapsed = time.monotonic() - started
        rate = (done - first_done) / elapsed if done > first_done and elapsed > 0 else None
        if await run.record(positions, rate):
            return ReplayState.CANCELLED
        if all(partition.finished for partition in run.progress.partitions):
            return ReplayState.SUCCEEDED
        await asyncio.sleep(poll_seconds)


def _clamp(offset: int, partition: PartitionProgress) -> int:
    return min(max(offset, partition.start_offset), partition.end_offset)


async def replay_to_projection(run: ReplayRun, *, poll_seconds: float = DEFAULT_GROUP_POLL_SECONDS) -> ReplayState:
    """Ask the projection's runner (its ``sluice project`` pod) to rebuild it from the start of its sources,
    once, then follow the rebuild until it has finished. A projection rebuild always replays everything, so
    the progress recorded here is the rebuild's (its fraction of events done, spread over the partitions)."""
    name = run.progress.request.target_name
    assert name is not None
    checkpoints = default_checkpoint_store(run.store)
    if not run.progress.target_prepared:
        await request_rebuild(run.store, name, checkpoints=checkpoints)
        await run.records.mark_target_prepared(run.name, run.progress.run_epoch)
        run.progress = dataclasses.replace(run.progress, target_prepared=True)
    while True:
        status = await projection_status(run.store, name, checkpoints=checkpoints)
        rebuild = status.rebuild
        if await checkpoints.rebuild_requested(name) or rebuild is None:
            fraction = 0.0  # its runner has not started the rebuild yet
        elif rebuild.running:
            fraction = min(1.0, rebuild.done / rebuild.total) if rebuild.total > 0 else 0.0
        else:
            fraction = 1.0
        positions = {
            partition.partition: partition.start_offset
            + int((partition.end_offset - partition.start_offset) * fraction)
            for partition in run.progress.partitions
        }
        if await run.record(positions, None):
            return ReplayState.CANCELLED
        if fraction >= 1.0:
            return ReplayState.SUCCEEDED
        await asyncio.sleep(poll_seconds)
