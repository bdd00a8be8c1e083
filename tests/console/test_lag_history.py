"""The lag history's bounds and the lag chart's geometry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sluice
from sluice import ConsumerGroupOptions, EventData, StreamConfig
from sluice.console.lag_chart import CHART_HEIGHT, MARGIN_BOTTOM, MARGIN_TOP, lag_chart
from sluice.console.lag_history import LagHistory, LagSample, LagSampler

START = datetime(2026, 1, 1, tzinfo=UTC)


def sample(seconds: float, lag: int) -> LagSample:
    return LagSample(at=START + timedelta(seconds=seconds), lag_events=lag)


def test_the_history_keeps_the_window_and_a_bounded_number_of_groups() -> None:
    history = LagHistory(window=timedelta(minutes=1), sample_interval=timedelta(seconds=10), max_groups=2)
    for second in range(0, 200, 10):
        history.record("orders", "email", sample(second, second))
    kept = history.samples("orders", "email", now=START + timedelta(seconds=190))
    assert [entry.lag_events for entry in kept] == [130, 140, 150, 160, 170, 180, 190]
    history.record("orders", "billing", sample(0, 1))
    history.record("orders", "audit", sample(0, 1))
    assert history.groups() == [("orders", "billing"), ("orders", "audit")]


def test_close_samples_with_the_same_lag_collapse_and_changes_are_kept() -> None:
    history = LagHistory(sample_interval=timedelta(seconds=10))
    history.record("orders", "email", sample(0, 5))
    history.record("orders", "email", sample(0.5, 5))
    history.record("orders", "email", sample(0.7, 4))
    history.record("orders", "email", sample(2, 3))
    kept = history.samples("orders", "email", now=START)
    assert [(entry.at - START).total_seconds() for entry in kept] == [0.5, 0.7, 2]
    assert [entry.lag_events for entry in kept] == [5, 4, 3]


def test_a_full_ring_overwrites_its_oldest_samples() -> None:
    history = LagHistory(window=timedelta(seconds=20), sample_interval=timedelta(seconds=10))
    capacity = history.max_samples * 4
    for second in range(capacity + 3):
        history.record("orders", "email", sample(second, second))
    kept = history.samples("orders", "email", now=START + timedelta(seconds=capacity + 2))
    assert [entry.lag_events for entry in kept] == list(range(capacity + 3))[-len(kept) :]
    assert kept[-1].lag_events == capacity + 2
    assert len(kept) <= capacity


def test_the_chart_puts_time_left_to_right_and_lag_bottom_to_top() -> None:
    chart = lag_chart([sample(0, 10), sample(30, 5), sample(60, 0)])
    points = [tuple(float(value) for value in point.split(",")) for point in chart.points.split()]
    assert [x for x, _y in points] == sorted(x for x, _y in points)
    assert points[0][1] == MARGIN_TOP
    assert points[-1][1] == CHART_HEIGHT - MARGIN_BOTTOM
    assert chart.values_text == "10,5,0"
    assert lag_chart([]).empty


async def test_the_sampler_records_every_group_with_one_listing() -> None:
    store = await sluice.connect("memory://")
    try:
        await store.create_stream(StreamConfig(name="orders"))
        await store.append("orders", [EventData("E", {"n": number}) for number in range(5)])
        options = ConsumerGroupOptions(
            session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200)
        )
        async with store.consumer_groups().consume(
            "orders", group_id="email", consumer_id="w", options=options
        ) as events:
            async for _event in events:
                break
        history = LagHistory(sample_interval=timedelta(milliseconds=50))
        sampler = LagSampler(store, history)
        assert await sampler.sample_once() == 1
        sampler.start()
        await asyncio.sleep(0.2)
        await sampler.stop()
        samples = history.samples("orders", "email")
        assert len(samples) >= 2
        assert {sample.lag_events for sample in samples} == {4}
    finally:
        await store.close()
