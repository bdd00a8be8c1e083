"""The token bucket on a fake clock, and what ReplayProgress computes (percent, ETA) from positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sluice.services.replay import (
    PartitionProgress,
    ReplayProgress,
    ReplayRequest,
    ReplayState,
    ReplayTargetKind,
    TokenBucket,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_the_bucket_allows_one_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    assert bucket.batch_limit == 10
    await bucket.acquire(10)  # the full bucket: no wait
    assert clock.sleeps == []
    for _ in range(5):
        await bucket.acquire(5)
    assert clock.now == 2.5  # 25 more events at 10/s
    assert all(abs(seconds - 0.5) < 1e-9 for seconds in clock.sleeps)


async def test_idle_time_refills_the_bucket_only_up_to_its_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, capacity=8, clock=clock, sleep=clock.sleep)
    await bucket.acquire(8)
    clock.now += 100  # idle for a long time
    await bucket.acquire(8)
    assert clock.sleeps == []
    await bucket.acquire(2)
    assert clock.sleeps == [0.5]


async def test_a_slow_rate_still_delivers_single_events() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.5, clock=clock, sleep=clock.sleep)
    assert bucket.batch_limit == 1
    await bucket.acquire(1)
    await bucket.acquire(1)
    assert clock.now == 2.0


def progress(state: ReplayState, positions: list[tuple[int, int, int]], rate: float | None) -> ReplayProgress:
    request = ReplayRequest(name="r", stream="s", from_offset=0, target=ReplayTargetKind.STREAM, target_name="t")
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    return ReplayProgress(
        request=request,
        state=state,
        partitions=tuple(
            PartitionProgress(partition=index, start_offset=start, next_offset=next_offset, end_offset=end)
            for index, (start, next_offset, end) in enumerate(positions)
        ),
        created_at=now,
        updated_at=now,
        events_per_second=rate,
    )


def test_percent_and_eta_come_from_positions_and_the_measured_rate() -> None:
    running = progress(ReplayState.RUNNING, [(10, 40, 110), (0, 20, 100)], rate=20.0)
    assert (running.events_done, running.events_total, running.percent) == (50, 200, 25)
    assert running.eta == timedelta(seconds=7.5)
    assert running.estimated_completion == running.updated_at + timedelta(seconds=7.5)
    assert progress(ReplayState.RUNNING, [(0, 5, 10)], rate=None).eta is None  # no rate measured yet
    assert progress(ReplayState.FAILED, [(0, 5, 10)], rate=5.0).eta is None  # not running
    empty = progress(ReplayState.SUCCEEDED, [(7, 7, 7)], rate=None)
    assert (empty.events_total, empty.percent, empty.finished) == (0, 100, True)
    assert progress(ReplayState.FAILED, [(0, 5, 10)], rate=None).finished is False  # failed is resumable
