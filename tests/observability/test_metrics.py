"""Prometheus instruments: recorded, rendered and parsed back; the lag refresher against real groups."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sluice import ConsumerGroupOptions, EventData, EventStore, InvalidArgumentError, StreamConfig
from sluice.observability import metrics as recording
from sluice.observability.lag_refresher import LagRefresher
from sluice.observability.metrics import SluiceMetrics

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


def samples(metrics: SluiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered registry, keyed by (name, sorted labels)."""
    parsed = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            parsed[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return parsed


def test_recorded_values_come_back_from_a_scrape() -> None:
    metrics = SluiceMetrics()
    recording.record_appended("orders", 3, 0.004, metrics=metrics)
    recording.record_appended("orders", 2, 0.2, metrics=metrics)
    recording.record_consumed("orders", "email", 5, 0.03, metrics=metrics)
    recording.record_enqueued("jobs", 4, metrics=metrics)
    recording.record_dequeued("jobs", 2, metrics=metrics)
    recording.record_acknowledged("jobs", metrics=metrics)
    recording.record_nacked("jobs", metrics=metrics)
    recording.record_dead_lettered("jobs", metrics=metrics)
    recording.record_rebalance("orders", "email", metrics=metrics)
    recording.set_queue_depth("jobs", depth=7, in_flight=2, metrics=metrics)
    parsed = samples(metrics)
    assert parsed[("sluice_events_appended_total", (("stream", "orders"),))] == 5
    assert parsed[("sluice_append_duration_seconds_count", (("stream", "orders"),))] == 2
    assert parsed[("sluice_append_duration_seconds_bucket", (("le", "0.005"), ("stream", "orders")))] == 1
    assert parsed[("sluice_append_duration_seconds_sum", (("stream", "orders"),))] == pytest.approx(0.204)
    assert parsed[("sluice_events_consumed_total", (("group", "email"), ("stream", "orders")))] == 5
    assert parsed[("sluice_delivery_latency_seconds_count", (("group", "email"), ("stream", "orders")))] == 1
    assert parsed[("sluice_messages_enqueued_total", (("queue", "jobs"),))] == 4
    assert parsed[("sluice_messages_dequeued_total", (("queue", "jobs"),))] == 2
    assert parsed[("sluice_messages_acknowledged_total", (("queue", "jobs"),))] == 1
    assert parsed[("sluice_messages_nacked_total", (("queue", "jobs"),))] == 1
    assert parsed[("sluice_messages_dead_lettered_total", (("queue", "jobs"),))] == 1
    assert parsed[("sluice_consumer_group_rebalances_total", (("group", "email"), ("stream", "orders")))] == 1
    assert parsed[("sluice_queue_depth", (("queue", "jobs"),))] == 7
    assert parsed[("sluice_queue_in_flight", (("queue", "jobs"),))] == 2


def test_registries_are_separate() -> None:
    first, second = SluiceMetrics(), SluiceMetrics()
    recording.record_appended("orders", 1, 0.001, metrics=first)
    assert ("sluice_events_appended_total", (("stream", "orders"),)) not in samples(second)


def test_negative_counts_never_decrease_a_counter() -> None:
    metrics = SluiceMetrics()
    recording.record_appended("orders", -3, -1.0, metrics=metrics)
    assert samples(metrics)[("sluice_events_appended_total", (("stream", "orders"),))] == 0


async def test_the_lag_refresher_reports_each_group_and_forgets_deleted_ones(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    for number in range(6):
        await store.append("orders", EventData("E", {"n": number}), partition=number % 2)
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="email", consumer_id="w1", options=FAST) as consumption:
        async for _event in consumption:
            break  # one event processed and committed on a clean exit
    metrics = SluiceMetrics()
    refresher = LagRefresher(store, interval=timedelta(seconds=60), metrics=metrics)
    assert await refresher.refresh_once() == 1
    parsed = samples(metrics)
    labels = (("group", "email"), ("stream", "orders"))
    assert parsed[("sluice_consumer_lag_events", labels)] == 5
    assert parsed[("sluice_consumer_lag_seconds", labels)] > 0
    assert parsed[("sluice_consumer_group_active_members", labels)] == 0  # it left on exit
    await reader.delete("orders", "email")
    assert await refresher.refresh_once() == 0
    assert ("sluice_consumer_lag_events", labels) not in samples(metrics)


async def test_the_lag_refresher_runs_in_the_background_until_stopped(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", EventData("E", {}))
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="g", consumer_id="w", options=FAST) as consumption:
        async for _event in consumption:
            break
    await store.append("orders", [EventData("E", {}), EventData("E", {})])
    metrics = SluiceMetrics()
    async with LagRefresher(store, interval=timedelta(milliseconds=50), metrics=metrics):
        for _ in range(100):
            if samples(metrics).get(("sluice_consumer_lag_events", (("group", "g"), ("stream", "orders"))), 0) == 2:
                break
            await asyncio.sleep(0.02)
    assert samples(metrics)[("sluice_consumer_lag_events", (("group", "g"), ("stream", "orders")))] == 2


async def test_the_refresh_interval_must_be_positive(store: EventStore) -> None:
    with pytest.raises(InvalidArgumentError, match="positive"):
        LagRefresher(store, interval=timedelta(0))


def test_a_group_recorder_records_into_the_same_series() -> None:
    metrics = SluiceMetrics()
    recorder = recording.GroupRecorder("orders", "email", metrics)
    recorder.consumed(10, 0.02)
    recorder.consumed(5)
    recorder.rebalanced()
    recording.record_consumed("orders", "email", 1, metrics=metrics)
    parsed = samples(metrics)
    labels = (("group", "email"), ("stream", "orders"))
    assert parsed[("sluice_events_consumed_total", labels)] == 16
    assert parsed[("sluice_delivery_latency_seconds_count", labels)] == 1
    assert parsed[("sluice_consumer_group_rebalances_total", labels)] == 1


async def test_the_refresher_reports_queue_depth_and_forgets_deleted_queues(store: EventStore) -> None:
    await store.enqueue_many("emails", [EventData("Send", {"n": number}) for number in range(4)])
    await store.dequeue("emails", visibility_timeout=timedelta(minutes=5))
    metrics = SluiceMetrics()
    refresher = LagRefresher(store, interval=timedelta(seconds=60), metrics=metrics)
    await refresher.refresh_once()
    parsed = samples(metrics)
    assert parsed[("sluice_queue_depth", (("queue", "emails"),))] == 3
    assert parsed[("sluice_queue_in_flight", (("queue", "emails"),))] == 1
    await store.delete_stream("emails")
    await refresher.refresh_once()
    assert ("sluice_queue_depth", (("queue", "emails"),)) not in samples(metrics)
