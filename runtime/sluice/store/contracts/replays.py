"""``ReplayRecords``: where replays are recorded, the contract every storage adapter implements
(``store.backend.replays``; the in-memory records are ``sluice.services.replay.records.MemoryReplayRecords``,
the PostgreSQL ones ``sluice.storage.postgres.replays``).

Every update of a run is conditional on the run's epoch (bumped each time the replay starts or
resumes), so a runner that was superseded (a retried Job whose first pod still lives) is fenced: its
update changes nothing and it stops with ReplayConflictError. Positions only move forwards.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from sluice.core.errors import ReplayConflictError
from sluice.store.values.replays import PartitionProgress, ReplayProgress, ReplayRequest, ReplayState


def superseded(name: str) -> ReplayConflictError:
    return ReplayConflictError(
        f"replay {name!r} was taken over by another run (or finished or cancelled meanwhile); this run stopped"
    )


class ReplayRecords(abc.ABC):
    """Stored replays of one store."""

    @abc.abstractmethod
    async def get(self, name: str) -> ReplayProgress | None:
        """The replay as recorded, or None."""

    @abc.abstractmethod
    async def list(self) -> list[ReplayProgress]:
        """Every recorded replay, by name."""

    @abc.abstractmethod
    async def create(self, request: ReplayRequest, partitions: Sequence[PartitionProgress]) -> bool:
        """Record a new pending replay; False (and nothing changed) if the name is taken."""

    @abc.abstractmethod
    async def begin_run(self, request: ReplayRequest) -> ReplayProgress:
        """Mark a resumable replay running under a new epoch (with this run's rate limit and batch
        size). Raises ReplayConflictError if it is finished."""

    @abc.abstractmethod
    async def advance(self, name: str, epoch: int, positions: dict[int, int], events_per_second: float | None) -> bool:
        """Move partitions forward to ``{partition: next offset}`` and record the rate; returns
        whether a cancel was requested. Raises ReplayConflictError if the run was superseded."""

    @abc.abstractmethod
    async def mark_target_prepared(self, name: str, epoch: int) -> None:
        """Record that the target was prepared (a consumer group's offsets were reset)."""

    @abc.abstractmethod
    async def finish(
        self, name: str, epoch: int, state: ReplayState, error: str | None
    ) -> tuple[datetime, datetime | None]:
        """End this run in ``state`` (``pending`` for an interrupted run that may be resumed); returns
        the recorded ``updated_at`` and ``finished_at`` (None unless the state is final)."""

    @abc.abstractmethod
    async def request_cancel(self, name: str) -> ReplayProgress:
        """Store a cancel request; a replay that is not running is cancelled at once, a running one
        between two batches. Finished replays are left as they are. Raises ReplayNotFoundError."""
