"""Consumer-group lag over time, for the console's lag chart.

``LagHistory`` keeps, per (stream, group), a bounded ring buffer of lag samples (in events);
``LagSampler`` samples every group of the store in the background of ``sluice serve`` (every 5 s by
default, 720 samples: one hour) with one listing of the groups (one query). The
console also records a sample whenever it shows a group, so the chart is current between samples.
Memory is bounded: at most ``max_groups`` groups are kept (the least recently sampled one is forgotten
first).
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from sluice.core.errors import SluiceError
from sluice.store import EventStore
from sluice.store.values.consumer_groups import GroupDescription

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_INTERVAL = timedelta(seconds=5)
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_MAX_GROUPS = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class LagSample:
    """A group's lag (in events) at one moment."""

    at: datetime
    lag_events: int


def sample_of(description: GroupDescription) -> LagSample:
    """The lag a group description shows, as a sample taken now."""
    return LagSample(at=datetime.now(UTC), lag_events=description.lag_events)


class _Ring:
    """One group's samples in two typed arrays (16 bytes a sample), overwriting the oldest when full."""

    __slots__ = ("capacity", "lags", "next", "times")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.times = array.array("d")
        self.lags = array.array("q")
        self.next = 0
        """Where the next sample goes once the arrays are full."""

    def last_index(self) -> int | None:
        if not self.times:
            return None
        return (self.next - 1) % len(self.times) if len(self.times) == self.capacity else len(self.times) - 1

    def add(self, at: float, lag: int) -> None:
        if len(self.times) < self.capacity:
            self.times.append(at)
            self.lags.append(lag)
            return
        self.times[self.next] = at
        self.lags[self.next] = lag
        self.next = (self.next + 1) % self.capacity

    def in_order(self) -> list[tuple[float, int]]:
        pairs = list(zip(self.times, self.lags, strict=True))
        return pairs[self.next :] + pairs[: self.next] if len(pairs) == self.capacity else pairs


class LagHistory:
    """Ring buffers of lag samples per (stream, group), covering at least ``window``.

    A ring holds four samples per ``sample_interval`` of the window: the sampler's, and those of a page
    refreshing every two seconds. A sample closer than a tenth of the interval to the last one, with
    the same lag, only moves the last one's time. So a group costs at most 16 bytes x 4 x 720 (46 KB),
    and 11.5 KB when nobody watches it; ``max_groups`` bounds the total."""

    def __init__(
        self,
        *,
        window: timedelta = DEFAULT_WINDOW,
        sample_interval: timedelta = DEFAULT_SAMPLE_INTERVAL,
        max_groups: int = DEFAULT_MAX_GROUPS,
    ) -> None:
        self.window = window
        self.sample_interval = sample_interval
        self.max_samples = int(window / sample_interval) + 1
        self.max_groups = max_groups
        self._rings: collections.OrderedDict[tuple[str, str], _Ring] = collections.OrderedDict()

    def record(self, stream_name: str, group_id: str, sample: LagSample) -> None:
        key = (stream_name, group_id)
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring(self.max_samples * 4)
            while len(self._rings) > self.max_groups:
                self._rings.popitem(last=False)
        self._rings.move_to_end(key)
        at = sample.at.timestamp()
        last = ring.last_index()
        close = self.sample_interval.total_seconds() / 10
        if last is not None and at - ring.times[last] < close and ring.lags[last] == sample.lag_events:
            ring.times[last] = at
            return
        ring.add(at, sample.lag_events)

    def samples(self, stream_name: str, group_id: str, *, now: datetime | None = None) -> list[LagSample]:
        """The group's samples within the window before ``now``, oldest first."""
        since = ((now or datetime.now(UTC)) - self.window).timestamp()
        ring = self._rings.get((stream_name, group_id))
        if ring is None:
            return []
        return [
            LagSample(at=datetime.fromtimestamp(at, UTC), lag_events=lag) for at, lag in ring.in_order() if at >= since
        ]

    def groups(self) -> list[tuple[str, str]]:
        return list(self._rings)


class LagSampler:
    """Samples every consumer group's lag into a LagHistory until stopped."""

    def __init__(self, store: EventStore, history: LagHistory) -> None:
        self._store = store
        self._history = history
        self._task: asyncio.Task[None] | None = None

    async def sample_once(self) -> int:
        """Record one sample of every group; returns how many groups were sampled."""
        now = datetime.now(UTC)
        summaries = (await self._store.consumer_groups().list_groups())[: self._history.max_groups]
        for summary in summaries:
            sample = LagSample(at=now, lag_events=summary.lag_events)
            self._history.record(summary.stream_name, summary.group_id, sample)
        return len(summaries)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sluice-console-lag-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        interval = self._history.sample_interval.total_seconds()
        while True:
            try:
                await self.sample_once()
            except SluiceError as error:  # the database away for a moment: the next tick tries again
                logger.warning("lag sampling failed", extra={"error": str(error)})
            await asyncio.sleep(interval)
