"""AppendBatcher: many concurrent single-event appends share transactions (group commit).

    async with AppendBatcher(store, linger=timedelta(milliseconds=2), max_batch=500) as batcher:
        result = await batcher.append("orders", OrderPlaced(...), partition_key="customer-7")

Each caller's events are validated and encoded on entry (a bad one fails only its caller), given a
fixed event id and the caller's correlation id, routed to a partition as the store would route them, and
queued in the lane of their stream and partition. A lane writes its queue with one
``store.append_prepared`` (each event encoded once, each keeping its correlation id) when the oldest
append has waited ``linger`` or ``max_batch`` events are queued, or at once when ``eager_events`` are queued
(a transaction of that many events already shares its commit widely: lingering would only add latency); each
caller then receives its own offsets, or its own error (see ``flushing.py``). Appends with an
``expected_offset`` (other than ``ExpectedOffset.ANY``, which expects nothing) are not batched: their check is
about the partition's head at that moment, so they go straight to the store.

It is built on the store's public API only (``append_prepared``), so it works with every backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Self

from sluice.core.batches import prepare_batch
from sluice.core.errors import InvalidArgumentError, PermissionDeniedError, StoreClosedError
from sluice.core.events import AppendResult, ExpectedOffset
from sluice.core.names import validate_stream_name
from sluice.core.prepared_batches import PreparedBatch
from sluice.observability.correlation import current_correlation_id
from sluice.services.group_commit.flushing import write_batch
from sluice.services.group_commit.lanes import AppendLane
from sluice.services.group_commit.metrics import GroupCommitMetrics, default_group_commit_metrics
from sluice.services.group_commit.pending import LaneKey, PendingAppend
from sluice.services.group_commit.routing import PartitionRouter
from sluice.store import MAX_BATCH_EVENTS, EventStore

DEFAULT_LINGER = timedelta(milliseconds=2)
DEFAULT_MAX_BATCH = 500
DEFAULT_EAGER_EVENTS = 100
"""Queued events that make a lane write at once: a transaction of 100 events already shares its commit widely,
and a caller's batch of that size (the gRPC bench's) would otherwise wait the whole linger for company."""


class AppendBatcher:
    """Batches concurrent appends into shared transactions; ``close()`` writes what is queued."""

    def __init__(
        self,
        store: EventStore,
        *,
        linger: timedelta = DEFAULT_LINGER,
        max_batch: int = DEFAULT_MAX_BATCH,
        eager_events: int = DEFAULT_EAGER_EVENTS,
        metrics: GroupCommitMetrics | None = None,
    ) -> None:
        if not isinstance(linger, timedelta) or linger < timedelta(0):
            raise InvalidArgumentError(f"linger must be a timedelta of zero or more, got {linger!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or not 1 <= max_batch <= MAX_BATCH_EVENTS:
            raise InvalidArgumentError(f"max_batch must be 1 to {MAX_BATCH_EVENTS} events, got {max_batch!r}")
        if isinstance(eager_events, bool) or not isinstance(eager_events, int) or eager_events < 1:
            raise InvalidArgumentError(f"eager_events must be a positive number of events, got {eager_events!r}")
        self.store = store
        self.linger = linger
        self.max_batch = max_batch
        self.eager_events = eager_events
        self._metrics = metrics or default_group_commit_metrics
        self._router = PartitionRouter(store)
        self._lanes: dict[LaneKey, AppendLane] = {}
        self._closed = False

    async def append(
        self,
        stream_name: str,
        events: Sequence[object] | object,
        *,
        expected_offset: int | ExpectedOffset | None = None,
        correlation_id: str | None = None,
        partition_key: str | None = None,
        partition: int | None = None,
    ) -> AppendResult:
        """Append like ``store.append`` (the caller's events stay together, all or none), sharing the
        transaction with concurrent callers. Returns this caller's own offsets; raises this caller's
        own error."""
        self._check_open()
        if expected_offset is not None and expected_offset is not ExpectedOffset.ANY:
            return await self.store.append(
                stream_name,
                events,
                expected_offset=expected_offset,
                correlation_id=correlation_id,
                partition_key=partition_key,
                partition=partition,
            )
        name = validate_stream_name(stream_name)
        _check_routing(partition_key, partition)
        correlation = _correlation(correlation_id)
        prepared = self._prepare(events, correlation)
        if len(prepared) >= self.max_batch:  # a full batch on its own: nothing to share
            return await self.store.append_prepared(name, prepared, partition_key=partition_key, partition=partition)
        try:
            target = await self._router.route(name, partition_key=partition_key, partition=partition)
        except PermissionDeniedError:
            # May write but not read the stream's description: the store routes this one itself.
            return await self.store.append_prepared(name, prepared, partition_key=partition_key, partition=partition)
        self._check_open()  # closed while the partition count was looked up
        pending = PendingAppend(prepared, asyncio.get_running_loop().create_future())
        self._lane(LaneKey(stream_name=name, partition=target)).add(pending)
        return await pending.result

    async def close(self) -> None:
        """Refuse new appends and write every queued one now. Safe to call twice. The store stays open."""
        self._closed = True
        # No lane can be added from now on (append checks _closed after its last await).
        await asyncio.gather(*(lane.drain() for lane in list(self._lanes.values())))
        self._lanes.clear()
        await self._router.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this append batcher was closed")

    def _prepare(self, events: Sequence[object] | object, correlation: str | None) -> PreparedBatch:
        """Validate and encode the caller's events now (once: the store takes the prepared batch), so that
        a bad one fails this caller only; their event ids are fixed here (a model gets its id), so that
        resending them after a failed batch is safe."""
        given = list(events) if isinstance(events, list | tuple) else [events]
        if not given:
            raise InvalidArgumentError("append needs at least one event")
        if len(given) > MAX_BATCH_EVENTS:
            raise InvalidArgumentError(f"append takes at most {MAX_BATCH_EVENTS} events per call")
        return prepare_batch(
            given, self.store.registry, self.store.options.max_payload_bytes, correlation_id=correlation
        )

    def _lane(self, key: LaneKey) -> AppendLane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = AppendLane(
                key,
                linger_seconds=self.linger.total_seconds(),
                max_batch=self.max_batch,
                eager_events=self.eager_events,
                write=self._write,
                on_idle=self._forget_lane,
            )
        return lane

    async def _write(self, key: LaneKey, batch: list[PendingAppend]) -> None:
        await write_batch(self.store, key, batch, metrics=self._metrics, on_failure=self._router.forget)

    def _forget_lane(self, lane: AppendLane) -> None:
        if lane.idle and self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]


def _check_routing(partition_key: object, partition: object) -> None:
    if partition_key is not None and not isinstance(partition_key, str):
        raise InvalidArgumentError(f"partition_key must be a string, got {type(partition_key).__name__}")
    if partition is not None and (isinstance(partition, bool) or not isinstance(partition, int) or partition < 0):
        raise InvalidArgumentError(f"partition must be an integer >= 0, got {partition!r}")


def _correlation(correlation_id: object) -> str | None:
    """The explicit correlation id, else the caller's ``correlation_context`` (captured here: the
    batch is written by another task, which does not see the caller's context)."""
    if correlation_id is None:
        return current_correlation_id()
    if not isinstance(correlation_id, str):
        raise InvalidArgumentError(f"correlation_id must be a string, got {type(correlation_id).__name__}")
    return correlation_id
