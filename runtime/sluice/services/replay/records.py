"""The in-memory records of a ``memory://`` store's replays (``ReplayRecords``, the contract, lives in
``sluice.store.contracts.replays``; ``record_stores.py`` picks the records of a store).

Every update of a run is conditional on the run's epoch (bumped each time the replay starts or
resumes), so a runner that was superseded (a retried Job whose first pod still lives) is fenced: its
update changes nothing and it stops with ReplayConflictError. Positions only move forwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

from sluice.core.errors import ReplayNotFoundError
from sluice.store.contracts.replays import ReplayRecords, superseded
from sluice.store.values.replays import PartitionProgress, ReplayProgress, ReplayRequest, ReplayState


@dataclasses.dataclass(slots=True)
class _MemoryReplay:
    request: ReplayRequest
    partitions: dict[int, PartitionProgress]
    state: ReplayState = ReplayState.PENDING
    created_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    events_per_second: float | None = None
    cancel_requested: bool = False
    target_prepared: bool = False
    run_epoch: int = 0
    error: str | None = None

    def progress(self) -> ReplayProgress:
        return ReplayProgress(
            request=self.request,
            state=self.state,
            partitions=tuple(self.partitions[partition] for partition in sorted(self.partitions)),
            created_at=self.created_at,
            updated_at=self.updated_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            events_per_second=self.events_per_second,
            cancel_requested=self.cancel_requested,
            target_prepared=self.target_prepared,
            run_epoch=self.run_epoch,
            error=self.error,
        )


class MemoryReplayRecords(ReplayRecords):
    """Replays of a ``memory://`` store, kept as long as the store lives. No method awaits while it
    changes a record, so each is atomic on its event loop, like one statement on PostgreSQL."""

    def __init__(self) -> None:
        self._replays: dict[str, _MemoryReplay] = {}

    def _running(self, name: str, epoch: int) -> _MemoryReplay:
        replay = self._replays.get(name)
        if replay is None or replay.run_epoch != epoch or replay.state is not ReplayState.RUNNING:
            raise superseded(name)
        return replay

    async def get(self, name: str) -> ReplayProgress | None:
        replay = self._replays.get(name)
        return None if replay is None else replay.progress()

    async def list(self) -> list[ReplayProgress]:
        return [self._replays[name].progress() for name in sorted(self._replays)]

    async def create(self, request: ReplayRequest, partitions: Sequence[PartitionProgress]) -> bool:
        if request.name in self._replays:
            return False
        self._replays[request.name] = _MemoryReplay(
            request=request, partitions={partition.partition: partition for partition in partitions}
        )
        return True

    async def begin_run(self, request: ReplayRequest) -> ReplayProgress:
        replay = self._replays.get(request.name)
        if replay is None:
            raise ReplayNotFoundError(request.name)
        if not replay.state.resumable:
            raise superseded(request.name)
        now = datetime.now(UTC)
        replay.request = request
        replay.run_epoch += 1
        replay.state = ReplayState.RUNNING
        replay.started_at = replay.started_at or now
        replay.updated_at = now
        replay.finished_at = None
        replay.error = None
        replay.events_per_second = None
        return replay.progress()

    async def advance(self, name: str, epoch: int, positions: dict[int, int], events_per_second: float | None) -> bool:
        replay = self._running(name, epoch)
        for partition, next_offset in positions.items():
            current = replay.partitions[partition]
            moved = min(max(current.next_offset, next_offset), current.end_offset)
            replay.partitions[partition] = dataclasses.replace(current, next_offset=moved)
        replay.events_per_second = events_per_second
        replay.updated_at = datetime.now(UTC)
        return replay.cancel_requested

    async def mark_target_prepared(self, name: str, epoch: int) -> None:
        self._running(name, epoch).target_prepared = True

    async def finish(
        self, name: str, epoch: int, state: ReplayState, error: str | None
    ) -> tuple[datetime, datetime | None]:
        replay = self._running(name, epoch)
        now = datetime.now(UTC)
        replay.state = state
        replay.error = error
        replay.updated_at = now
        replay.finished_at = None if state in (ReplayState.PENDING, ReplayState.RUNNING) else now
        return replay.updated_at, replay.finished_at

    async def request_cancel(self, name: str) -> ReplayProgress:
        replay = self._replays.get(name)
        if replay is None:
            raise ReplayNotFoundError(name)
        if replay.state.resumable:
            replay.cancel_requested = True
            replay.updated_at = datetime.now(UTC)
            if replay.state is not ReplayState.RUNNING:
                replay.state = ReplayState.CANCELLED
                replay.finished_at = replay.updated_at
        return replay.progress()
