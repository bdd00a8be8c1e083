"""The lag refresher's per-partition lag, stream head and size gauges, and ``sluice_database_up`` (what the
Grafana dashboards and alert rules read), on both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig
from sluice.observability.lag_refresher import LagRefresher
from sluice.observability.metrics import SluiceMetrics
from tests.observability.test_metrics import samples

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


async def test_partition_lag_and_stream_heads_are_reported_and_forgotten(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    for number in range(5):
        await store.append("orders", EventData("E", {"n": number}), partition=0 if number < 3 else 1)
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="email", consumer_id="w1", options=FAST) as consumption:
        async for _event in consumption:
            break  # one event processed and committed on a clean exit
    metrics = SluiceMetrics()
    refresher = LagRefresher(store, interval=timedelta(seconds=60), metrics=metrics)
    await refresher.refresh_once()
    parsed = samples(metrics)
    lag = {
        partition: parsed[
            (
                "sluice_consumer_partition_lag_events",
                (("group", "email"), ("partition", partition), ("stream", "orders")),
            )
        ]
        for partition in ("0", "1")
    }
    assert sum(lag.values()) == 4
    assert sorted(lag.values()) == [2, 2]  # one of the partitions had its first event committed
    assert parsed[("sluice_stream_head_offset", (("partition", "0"), ("stream", "orders")))] == 3
    assert parsed[("sluice_stream_head_offset", (("partition", "1"), ("stream", "orders")))] == 2
    assert parsed[("sluice_stream_retained_events", (("partition", "0"), ("stream", "orders")))] == 3
    assert parsed[("sluice_database_up", ())] == 1
    await reader.delete("orders", "email")
    await store.delete_stream("orders")
    await refresher.refresh_once()
    names = {name for name, _labels in samples(metrics)}
    assert "sluice_consumer_partition_lag_events" not in names
    assert "sluice_stream_head_offset" not in names


async def test_a_failed_refresh_sets_database_up_to_zero(store: EventStore, store_url: str) -> None:
    metrics = SluiceMetrics()
    refresher = LagRefresher(store, interval=timedelta(seconds=60), metrics=metrics)
    await refresher.refresh_once()
    assert samples(metrics)[("sluice_database_up", ())] == 1
    gone = await sluice.connect(store_url)
    await gone.close()  # every call now fails, as reads do once the database is unreachable
    async with LagRefresher(gone, interval=timedelta(milliseconds=20), metrics=metrics):
        for _ in range(200):
            if samples(metrics)[("sluice_database_up", ())] == 0:
                break
            await asyncio.sleep(0.01)
    assert samples(metrics)[("sluice_database_up", ())] == 0
