"""``ProjectionRunner``: reads a projection's sources and applies them, batch by batch, with checkpoints.

Each batch is read after the checkpoint of the version it goes to and applied through the checkpoint
store, which moves the checkpoint with it (in one transaction in same-database mode). A rebuild replays
the sources from the start: in place (the reset hook clears the read model first) or blue/green (a new
version is built beside the active one, both kept up to date, and the new one becomes active, atomically
with its checkpoint, as soon as it has caught up).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sluice.core.errors import (
    ConnectionLostError,
    DatabaseBusyError,
    InvalidArgumentError,
    ProjectionConflictError,
    ProjectionHandlerError,
    SluiceError,
)
from sluice.core.events import RecordedEvent
from sluice.services.projections import metrics
from sluice.services.projections.context import ProjectionContext
from sluice.services.projections.memory_checkpoints import MemoryCheckpointStore
from sluice.services.projections.options import ProjectionStart
from sluice.services.projections.projection import Hook, Projection, call
from sluice.services.projections.read_ahead import ReadAhead
from sluice.services.projections.sources import SourceReader
from sluice.store import EventStore
from sluice.store.contracts.projection_checkpoints import CheckpointStore, TransactionWork
from sluice.store.values.projections import ProjectionState, RebuildProgress, VersionCheckpoint, merge_dead_letters

if TYPE_CHECKING:
    from sluice.store.sql_connection import SqlConnection

logger = logging.getLogger(__name__)

OUTAGE_FIRST_DELAY_SECONDS = 0.1
OUTAGE_MAX_DELAY_SECONDS = 2.0
"""Backoff while the database is away (doubling from the first delay up to the last)."""

ProgressCallback = Callable[[RebuildProgress], None]


def default_checkpoint_store(store: EventStore) -> CheckpointStore:
    """Checkpoints in the store's SQL database (same-database mode) where its adapter has one (PostgreSQL),
    in memory otherwise."""
    database = store.backend.database
    return MemoryCheckpointStore() if database is None else database.projection_checkpoints()


class ProjectionRunner:
    """Runs one projection against one store until ``stop()`` (or once, with ``run_until_caught_up``)."""

    def __init__(
        self,
        projection: Projection,
        store: EventStore,
        *,
        checkpoints: CheckpointStore | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.projection = projection
        self.store = store
        self.checkpoints = checkpoints if checkpoints is not None else default_checkpoint_store(store)
        self.reader = SourceReader(store, projection.sources)
        self._read_ahead = ReadAhead(self.reader)
        self.on_progress = on_progress
        self.stopping = asyncio.Event()
        self.events_applied = 0
        self._state: ProjectionState | None = None
        self._events_applied = metrics.EVENTS_APPLIED.labels(projection.name)
        self._batch_seconds = metrics.BATCH_SECONDS.labels(projection.name)
        self._events_dead_lettered = metrics.EVENTS_DEAD_LETTERED.labels(projection.name)

    @property
    def state(self) -> ProjectionState | None:
        """The projection as this runner last saw it (None before ``start``)."""
        return self._state

    # ----------------------------------------------------------------- lifecycle

    async def start(self, *, reset_generation: int = 0) -> ProjectionState:
        """Register the projection (a new one starts where its options say) and, when ``reset_generation``
        is higher than the one stored, start a rebuild."""
        if isinstance(reset_generation, bool) or not isinstance(reset_generation, int) or reset_generation < 0:
            raise InvalidArgumentError(f"reset_generation must be an integer >= 0, got {reset_generation!r}")
        options = self.projection.options
        start_after = options.start_after
        if start_after is None and options.start is ProjectionStart.END:
            start_after = await self.reader.head()
        state = await self.checkpoints.register(
            self.projection.name,
            self.projection.sources,
            reset_generation=reset_generation,
            start_after=start_after,
        )
        self._state = state
        self._record_metrics()
        if self.projection.start_hook is not None:
            await self.checkpoints.run_in_transaction(
                self._hook_work(self.projection.start_hook, state.active_version, rebuilding=False)
            )
        if reset_generation > state.reset_generation:
            logger.info(
                "projection %s: reset generation %d > %d, rebuilding",
                self.projection.name,
                reset_generation,
                state.reset_generation,
            )
            await self.rebuild(generation=reset_generation)
        elif state.rebuild_requested:
            logger.info("projection %s: a rebuild was requested, rebuilding", self.projection.name)
            await self.rebuild()
        else:
            reason = await self._version_outdated(state)
            if reason is not None:
                logger.info("projection %s: the definition changed (%s), rebuilding", self.projection.name, reason)
                await self.rebuild()
        return self._require_state()

    async def _version_outdated(self, state: ProjectionState) -> str | None:
        """The projection's version check on its newest version: why that version must be built again."""
        check = self.projection.version_check
        if check is None:
            return None
        version = state.building_version or state.active_version
        reasons: list[str] = []

        async def work(connection: SqlConnection | None) -> None:
            reason = await check(ProjectionContext(self.projection.name, version, connection, rebuilding=False))
            if reason is not None:
                reasons.append(f"version {version}: {reason}")

        await self.checkpoints.run_in_transaction(work)
        return reasons[0] if reasons else None

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in hand. Safe from a signal handler on the event loop."""
        self.stopping.set()

    async def run(self) -> None:
        """Apply events as they are appended until ``stop()``. A handler's error ends it (nothing of that
        batch is applied in same-database mode; the batch is retried when the projection runs again)."""
        if self._state is None:
            await self.start()
        check_interval = self.store.options.poll_interval.total_seconds()
        next_request_check = time.monotonic() + check_interval
        try:
            while not self.stopping.is_set():
                ticket = self.reader.wake_up_ticket()
                try:
                    if time.monotonic() >= next_request_check:
                        next_request_check = time.monotonic() + check_interval
                        await self._rebuild_if_requested()
                    applied = await self.step()
                except ProjectionConflictError as error:
                    logger.warning("projection %s: %s; reloading its checkpoint", self.projection.name, error)
                    await self._reload()
                    continue
                except (ConnectionLostError, DatabaseBusyError) as error:
                    await self._ride_out_outage(error)
                    continue
                if applied == 0:
                    await self._wait(ticket)
        finally:
            await self._read_ahead.cancel()

    async def run_until_caught_up(self) -> ProjectionState:
        """Apply every event appended so far (finishing a rebuild that can finish), then return."""
        if self._state is None:
            await self.start()
        try:
            while await self.step():
                pass
        finally:
            await self._read_ahead.cancel()
        return self._require_state()

    async def rebuild(self, *, blue_green: bool | None = None, generation: int | None = None) -> ProjectionState:
        """Start replaying the sources from the start: blue/green when the projection supports it (default)
        or asked for, else in place (the reset hook clears the read model). ``run`` carries it out; progress
        is in ``state.rebuild`` and in ``projection_status``."""
        state = await self._current_state()
        projection = self.projection
        use_blue_green = projection.supports_blue_green if blue_green is None else blue_green
        if use_blue_green and not projection.supports_blue_green:
            raise InvalidArgumentError(
                f"projection {projection.name!r} has no on_activate_version hook: it can only rebuild in place"
            )
        total = (await self.reader.behind(None)).events
        hook: Hook | None
        if use_blue_green:
            version = state.building_version or max(state.checkpoints) + 1
            hook = projection.prepare_version_hook
        else:
            version = state.active_version
            hook = projection.reset_hook
        self._state = await self.checkpoints.start_rebuild(
            projection.name,
            generation=state.reset_generation if generation is None else generation,
            version=version,
            blue_green=use_blue_green,
            total=total,
            work=self._hook_work(hook, version),
        )
        logger.info(
            "projection %s: rebuilding version %d (%s), %d events to replay",
            projection.name,
            version,
            "blue/green" if use_blue_green else "in place",
            total,
        )
        self._report_progress()
        return self._require_state()

    async def _rebuild_if_requested(self) -> None:
        """Start a rebuild someone asked for with ``request_rebuild`` (checked once per poll interval)."""
        if await self.checkpoints.rebuild_requested(self.projection.name):
            logger.info("projection %s: a rebuild was requested, rebuilding", self.projection.name)
            await self.rebuild()

    # ----------------------------------------------------------------- one round

    async def step(self) -> int:
        """Apply at most one batch to each running version; returns the events applied."""
        state = await self._current_state()
        batch_size = self.projection.options.batch_size
        applied = 0
        for version in state.running_versions():
            checkpoint = self._require_state().checkpoints[version]
            events = await self._read_ahead.take(version, checkpoint.position, batch_size)
            if events:
                if len(events) == batch_size:  # more may follow: read them while this batch commits
                    self._read_ahead.start(version, events[-1].global_position, batch_size)
                try:
                    await self._apply(version, checkpoint, events)
                except BaseException:
                    await self._read_ahead.cancel()
                    raise
                applied += len(events)
            rebuild = self._require_state().rebuild
            if len(events) < batch_size and rebuild is not None and rebuild.running and rebuild.version == version:
                await self._finish_rebuild(version)
        self.events_applied += applied
        return applied

    async def _apply(self, version: int, checkpoint: VersionCheckpoint, events: Sequence[RecordedEvent]) -> None:
        state = self._require_state()
        projection = self.projection
        rebuild = state.rebuild
        rebuilding = rebuild is not None and rebuild.running and rebuild.version == version
        dead_lettered = 0

        async def apply_batch(connection: SqlConnection | None) -> None:
            nonlocal dead_lettered
            context = ProjectionContext(projection.name, version, connection, rebuilding)
            try:
                await projection.apply(events, context)
                letters = merge_dead_letters(context.dead_letters)
                await self.checkpoints.record_dead_letters(connection, projection.name, letters)
                dead_lettered = len(letters)
            except SluiceError:
                raise  # already typed
            except Exception as error:
                if isinstance(self.checkpoints.translate_error(error), ConnectionLostError):
                    raise  # the transaction's connection broke: the store's pool reports it as ConnectionLostError
                raise ProjectionHandlerError(
                    f"projection {projection.name!r} (version {version}): a handler failed on the batch of "
                    f"{len(events)} event(s) from {events[0].stream_name}/{events[0].partition}/{events[0].offset} "
                    f"({events[0].event_type}) at {events[0].global_position}: {error!r}"
                ) from error

        position = events[-1].global_position
        started = time.perf_counter()
        await self.checkpoints.advance(
            projection.name,
            version,
            expected=checkpoint.position,
            position=position,
            count=len(events),
            work=apply_batch,
        )
        self._batch_seconds.observe(time.perf_counter() - started)
        self._events_applied.inc(len(events))
        if dead_lettered:
            self._events_dead_lettered.inc(dead_lettered)
            logger.warning(
                "projection %s (version %d): %d event(s) of the batch up to %s could not be applied and were "
                "dead-lettered (see projection_dead_letters)",
                projection.name,
                version,
                dead_lettered,
                position,
            )
        checkpoints = dict(state.checkpoints)
        checkpoints[version] = VersionCheckpoint(
            version,
            position,
            checkpoint.events_applied + len(events),
            checkpoint.events_dead_lettered + dead_lettered,
        )
        if rebuilding and rebuild is not None:
            rebuild = dataclasses.replace(rebuild, done=rebuild.done + len(events))
        self._state = dataclasses.replace(state, checkpoints=checkpoints, rebuild=rebuild)
        if rebuilding:
            self._report_progress()

    async def _finish_rebuild(self, version: int) -> None:
        state = self._require_state()
        projection = self.projection
        previous = state.active_version
        self._state = await self.checkpoints.finish_rebuild(
            projection.name, version, work=self._hook_work(projection.activate_version_hook, version)
        )
        logger.info("projection %s: rebuild of version %d finished; it is active", projection.name, version)
        if previous != version and projection.retire_version_hook is not None:
            # After the switch committed: readers already see the new version.
            retire = self._hook_work(projection.retire_version_hook, previous)
            await self.checkpoints.run_in_transaction(retire)
        self._report_progress()

    # ----------------------------------------------------------------- helpers

    def _hook_work(self, hook: Hook | None, version: int, *, rebuilding: bool = True) -> TransactionWork:
        name = self.projection.name

        async def work(connection: SqlConnection | None) -> None:
            if hook is not None:
                await call(hook, ProjectionContext(name, version, connection, rebuilding))

        return work

    def _report_progress(self) -> None:
        rebuild = self._record_metrics()
        if rebuild is not None and self.on_progress is not None:
            self.on_progress(rebuild)

    def _record_metrics(self) -> RebuildProgress | None:
        state = self._require_state()
        metrics.ACTIVE_VERSION.labels(state.name).set(state.active_version)
        rebuild = state.rebuild
        metrics.REBUILD_PERCENT.labels(state.name).set(100 if rebuild is None else rebuild.percent)
        return rebuild

    async def _current_state(self) -> ProjectionState:
        if self._state is None:
            await self._reload()
        return self._require_state()

    async def _reload(self) -> None:
        state = await self.checkpoints.load(self.projection.name)
        if state is None:
            state = await self.checkpoints.register(
                self.projection.name, self.projection.sources, reset_generation=0, start_after=None
            )
        self._state = state

    def _require_state(self) -> ProjectionState:
        if self._state is None:
            raise InvalidArgumentError("start the projection runner first")
        return self._state

    async def _ride_out_outage(self, error: SluiceError) -> None:
        """Wait with backoff until the database answers again (or ``stop()``), then go on from the stored
        checkpoint, which says whether the batch in hand committed. A PostgreSQL restart used to end
        ``run`` (``sluice project`` exited 1, and again while the database was starting: a crash loop)."""
        name, started, delay = self.projection.name, time.monotonic(), OUTAGE_FIRST_DELAY_SECONDS
        logger.warning("projection %s: the database is unavailable, retrying: %s", name, error)
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(delay * 2, OUTAGE_MAX_DELAY_SECONDS)
            try:
                await self._reload()
            except (ConnectionLostError, DatabaseBusyError):
                continue
            logger.info("projection %s: the database answers again after %.1f s", name, time.monotonic() - started)
            return

    async def _wait(self, ticket: asyncio.Event) -> None:
        """Until an append, ``stop()`` or the poll interval, whichever comes first."""
        appended = asyncio.ensure_future(self.reader.wait_for_appends(ticket))
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({appended, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (appended, stopped):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
