"""``Replays``: start or resume a replay, cancel it, and read its progress.

    replays = Replays(store)
    progress = await replays.start(ReplayRequest(name="rebuild-1", stream="orders", from_offset=0,
                                                 target=ReplayTargetKind.STREAM, target_name="orders-copy"))
    print(progress.state, progress.percent)

Starting a name that is recorded resumes it from its recorded positions (its definition must match;
rate limit and batch size may change); a finished replay is returned as it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable

from sluice.core.errors import InvalidArgumentError, ReplayConflictError, ReplayNotFoundError
from sluice.services.replay.planning import check_target, plan_partitions
from sluice.services.replay.record_stores import replay_records
from sluice.services.replay.runner import (
    DEFAULT_GROUP_POLL_SECONDS,
    ProgressCallback,
    ReplayRun,
    replay_batches,
    replay_to_group,
    replay_to_projection,
)
from sluice.services.replay.targets import HandlerTarget, ReplayHandler, StreamTarget
from sluice.store import EventStore
from sluice.store.contracts.replays import ReplayRecords
from sluice.store.values.replays import (
    ReplayProgress,
    ReplayRequest,
    ReplayState,
    ReplayTargetKind,
    validate_replay_name,
)


@dataclasses.dataclass(frozen=True, slots=True)
class _ActiveRun:
    run: ReplayRun
    task: asyncio.Task[ReplayProgress]


class Replays:
    """Replays of one store (their records live in the store's database, or in its memory)."""

    def __init__(
        self,
        store: EventStore,
        *,
        records: ReplayRecords | None = None,
        group_poll_seconds: float = DEFAULT_GROUP_POLL_SECONDS,
    ) -> None:
        self._store = store
        self._records = records or replay_records(store)
        self._group_poll_seconds = group_poll_seconds
        self._active: dict[str, _ActiveRun] = {}

    async def progress(self, name: str) -> ReplayProgress:
        """The replay as recorded. Raises ReplayNotFoundError."""
        progress = await self._records.get(validate_replay_name(name))
        if progress is None:
            raise ReplayNotFoundError(name)
        return progress

    async def list(self) -> list[ReplayProgress]:
        """Every recorded replay, by name."""
        return await self._records.list()

    async def cancel(self, name: str) -> ReplayProgress:
        """Request cancellation: a replay that is not running is cancelled now; a running one stops
        before its next batch (at once when it runs in this process). Finished replays stay as they are."""
        progress = await self._records.request_cancel(validate_replay_name(name))
        active = self._active.get(name)
        if active is not None and not active.task.done():
            active.run.cancel_observed = True
            active.task.cancel()
        return progress

    async def resume(
        self,
        name: str,
        *,
        handler: ReplayHandler | None = None,
        rate_limit: float | None = None,
        batch_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ReplayProgress:
        """Continue a recorded replay by name (with a new rate limit or batch size if given)."""
        recorded = (await self.progress(name)).request
        changes: dict[str, object] = {}
        if rate_limit is not None:
            changes["rate_limit"] = rate_limit
        if batch_size is not None:
            changes["batch_size"] = batch_size
        request = ReplayRequest(**{**recorded.model_dump(), **changes}) if changes else recorded
        return await self.start(request, handler=handler, on_progress=on_progress)

    async def _body(
        self, run: ReplayRun, request: ReplayRequest, handler: ReplayHandler | None
    ) -> Awaitable[ReplayState]:
        """The work of the run, by target (a coroutine, not started)."""
        if request.target is ReplayTargetKind.CONSUMER_GROUP:
            return replay_to_group(run, poll_seconds=self._group_poll_seconds)
        if request.target is ReplayTargetKind.PROJECTION:
            return replay_to_projection(run, poll_seconds=self._group_poll_seconds)
        if request.target is ReplayTargetKind.STREAM:
            assert request.target_name is not None
            source = await self._store.get_stream(request.stream)
            target = await StreamTarget.open(
                self._store,
                replay_name=request.name,
                stream_name=request.target_name,
                source_partitions=source.partitions,
            )
            return replay_batches(run, target)
        assert handler is not None
        return replay_batches(run, HandlerTarget(handler))

    async def start(
        self,
        request: ReplayRequest,
        *,
        handler: ReplayHandler | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ReplayProgress:
        """Start the replay, or resume it if it is recorded and unfinished; returns its final progress
        (``succeeded`` or ``cancelled``). Raises ReplayFailedError when it fails (its positions are kept)."""
        if (request.target is ReplayTargetKind.HANDLER) != (handler is not None):
            raise InvalidArgumentError("give a handler exactly when the replay's target is a handler")
        if request.name in self._active and not self._active[request.name].task.done():
            raise ReplayConflictError(f"replay {request.name!r} is already running in this process")
        recorded = await self._records.get(request.name)
        if recorded is None:
            await check_target(self._store, request)
            await self._records.create(request, await plan_partitions(self._store, request))
            recorded = await self.progress(request.name)
        if recorded.request.definition() != request.definition():
            raise ReplayConflictError(
                f"replay {request.name!r} exists with another definition ({recorded.request.definition()}); "
                "use a new name to replay again"
            )
        if not recorded.state.resumable:
            return recorded
        run = ReplayRun(self._store, self._records, await self._records.begin_run(request), on_progress)
        if run.progress.cancel_requested:
            return await run.finish(ReplayState.CANCELLED)
        body = await self._body(run, request, handler)
        task = asyncio.create_task(run.execute(body), name=f"sluice-replay-{request.name}")
        self._active[request.name] = _ActiveRun(run, task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and run.cancel_observed and (current is None or not current.cancelling()):
                return run.progress  # cancelled through cancel(): a normal end
            raise
        finally:
            self._active.pop(request.name, None)
