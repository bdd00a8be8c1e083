"""Consumer-group lag over time, for the console's lag chart.

``LagHistory`` keeps, per (stream, group), a bounded ring buffer of samples (lag in events and seconds);
``LagSampler`` samples every group of the store in the background of ``sluice serve`` (every 5 s by
default, 720 samples: one hour) with one listing of the groups (one query; lag in events only). The
console also records a full sample whenever it shows a group, so the chart is current between samples.
Memory is bounded: at most ``max_groups`` groups are kept (the least recently sampled one is forgotten
first).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from sluice.consumers.model import GroupDescription
from sluice.errors import SluiceError
from sluice.store import EventStore

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_INTERVAL = timedelta(seconds=5)
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_MAX_GROUPS = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class LagSample:
    """A group's lag at one moment."""

    at: datetime
    lag_events: int
    lag_seconds: float | None
    """None for the background samples: they come from one listing of every group, which counts events only."""


def sample_of(description: GroupDescription) -> LagSample:
    """The lag a group description shows, as a sample taken now."""
    return LagSample(at=datetime.now(UTC), lag_events=description.lag_events, lag_seconds=description.lag_seconds)


class LagHistory:
    """Ring buffers of lag samples per (stream, group), covering at least ``window``."""

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
        self._samples: collections.OrderedDict[tuple[str, str], collections.deque[LagSample]] = (
            collections.OrderedDict()
        )

    def record(self, stream_name: str, group_id: str, sample: LagSample) -> None:
        """Add a sample (several samples closer than a tenth of the interval collapse into the last)."""
        key = (stream_name, group_id)
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = collections.deque(maxlen=self.max_samples * 2)
            while len(self._samples) > self.max_groups:
                self._samples.popitem(last=False)
        self._samples.move_to_end(key)
        if samples and sample.at - samples[-1].at < self.sample_interval / 10:
            samples[-1] = sample
        else:
            samples.append(sample)

    def samples(self, stream_name: str, group_id: str, *, now: datetime | None = None) -> list[LagSample]:
        """The group's samples within the window before ``now``, oldest first."""
        since = (now or datetime.now(UTC)) - self.window
        return [sample for sample in self._samples.get((stream_name, group_id), ()) if sample.at >= since]

    def groups(self) -> list[tuple[str, str]]:
        return list(self._samples)


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
            sample = LagSample(at=now, lag_events=summary.lag_events, lag_seconds=None)
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
