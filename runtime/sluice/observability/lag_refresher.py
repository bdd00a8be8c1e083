"""Keeps the lag (per group and per partition), active-member, queue-depth, stream head and size gauges
current by describing every consumer group and stream (and counting every queue) periodically, and
reports whether that reached the database (``sluice_database_up``).

Prometheus collectors run synchronously inside a scrape, and describing a group needs the database,
so a background task polls instead: ``refresh_once()`` lists the groups, describes each, sets the
gauges and removes the gauges of groups that disappeared. A failed refresh (database down) is
logged and retried at the next interval and sets ``sluice_database_up`` to 0; the other gauges keep
their last values meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.core.errors import GroupNotFoundError, InvalidArgumentError, SluiceError, StreamNotFoundError
from sluice.core.streams import StreamInfo, StreamType
from sluice.observability.metrics import (
    SluiceMetrics,
    default_metrics,
    forget_group,
    forget_queue,
    forget_stream,
    set_database_up,
    set_group_state,
    set_partition_lag,
    set_queue_depth,
    set_stream_partition,
)

if TYPE_CHECKING:
    from sluice.store import EventStore

DEFAULT_REFRESH_INTERVAL = timedelta(seconds=15)
logger = logging.getLogger(__name__)


class LagRefresher:
    """``await refresher.start()`` ... ``await refresher.stop()``, or ``async with LagRefresher(store):``."""

    def __init__(
        self,
        store: EventStore,
        *,
        interval: timedelta = DEFAULT_REFRESH_INTERVAL,
        metrics: SluiceMetrics = default_metrics,
    ) -> None:
        if interval <= timedelta(0):
            raise InvalidArgumentError(f"the lag refresh interval must be positive, got {interval}")
        self._store = store
        self._interval = interval
        self._metrics = metrics
        self._reported: dict[tuple[str, str], int] = {}
        self._reported_queues: set[str] = set()
        self._reported_streams: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def refresh_once(self) -> int:
        """Describe every group and stream, count every queue and set their gauges; returns how many groups were
        reported. Raises what the store raises (the background loop then sets ``sluice_database_up`` to 0)."""
        reader = self._store.consumer_groups()
        seen: dict[tuple[str, str], int] = {}
        for summary in await reader.list_groups():
            try:
                description = await reader.describe(summary.stream_name, summary.group_id)
            except (GroupNotFoundError, StreamNotFoundError):
                continue  # deleted between the list and the describe
            key = (summary.stream_name, summary.group_id)
            seen[key] = len(description.partitions)
            for partition in description.partitions:
                set_partition_lag(
                    summary.stream_name,
                    summary.group_id,
                    partition.partition,
                    lag_events=partition.lag_events,
                    lag_seconds=partition.lag_seconds,
                    metrics=self._metrics,
                )
            set_group_state(
                summary.stream_name,
                summary.group_id,
                lag_events=description.lag_events,
                lag_seconds=description.lag_seconds,
                active_members=len(description.active_members),
                metrics=self._metrics,
            )
        for (stream_name, group_id), partitions in self._reported.items():
            if (stream_name, group_id) not in seen:
                forget_group(stream_name, group_id, partitions=partitions, metrics=self._metrics)
        self._reported = seen
        streams = await self._store.list_streams()
        self._refresh_stream_heads(streams)
        await self._refresh_queue_depths(streams)
        set_database_up(True, metrics=self._metrics)
        return len(seen)

    def _refresh_stream_heads(self, streams: list[StreamInfo]) -> None:
        seen: dict[str, int] = {}
        for stream in streams:
            if stream.type is StreamType.EPHEMERAL:
                continue
            seen[stream.name] = len(stream.partition_heads)
            for partition in stream.partition_heads:
                set_stream_partition(
                    stream.name,
                    partition.partition,
                    head=partition.head,
                    retained_events=partition.head - partition.first_offset,
                    metrics=self._metrics,
                )
        for stream_name, partitions in self._reported_streams.items():
            if stream_name not in seen:
                forget_stream(stream_name, partitions, metrics=self._metrics)
        self._reported_streams = seen

    async def _refresh_queue_depths(self, streams: list[StreamInfo]) -> None:
        queues = {stream.name for stream in streams if stream.type is StreamType.EPHEMERAL}
        for queue_name in queues:
            try:
                depth = await self._store.queue_depth(queue_name)
            except StreamNotFoundError:
                continue  # deleted between the list and the count
            set_queue_depth(queue_name, depth=depth.waiting, in_flight=depth.in_flight, metrics=self._metrics)
        for queue_name in self._reported_queues - queues:
            forget_queue(queue_name, metrics=self._metrics)
        self._reported_queues = queues

    async def start(self) -> None:
        """Refresh now, then every interval in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sluice-lag-refresher")

    async def stop(self) -> None:
        """Stop the background task (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> LagRefresher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        seconds = self._interval.total_seconds()
        while True:
            try:
                await self.refresh_once()
            except (SluiceError, OSError) as error:
                set_database_up(False, metrics=self._metrics)
                logger.warning("consumer lag refresh failed: %s", error)
            await asyncio.sleep(seconds)
