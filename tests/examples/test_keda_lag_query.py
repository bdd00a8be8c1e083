"""The KEDA lag query (keda_lag.sql, carried word for word by examples/autoscaling/keda-scaledobject.yaml)
against a real PostgreSQL: through appends, a member joining, partial commits and the member leaving, it
returns exactly the runtime's ``consumer_groups().describe(...).lag_events``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

import sluice
from sluice import ConsumerGroupOptions, EventData, GroupNotFoundError, OffsetCommitStrategy, StreamConfig
from tests.custom_resources.manifests import load_example
from tests.examples.autoscaling import example_stream_partitions, keda_lag_query

pytestmark = pytest.mark.postgres

MANUAL = ConsumerGroupOptions(
    commit_strategy=OffsetCommitStrategy.MANUAL,
    session_timeout=timedelta(seconds=2),
    heartbeat_interval=timedelta(milliseconds=200),
    batch_size=50,
)


async def query_lag(dsn: str) -> int:
    """What KEDA's postgresql trigger reads: the single value of the query."""
    connection = await asyncpg.connect(dsn)
    try:
        value = await connection.fetchval(keda_lag_query())
    finally:
        await connection.close()
    assert isinstance(value, int)
    return value


async def test_the_keda_query_returns_the_runtime_lag(postgres_dsn: str) -> None:
    stream_name = load_example("event-stream.yaml")["metadata"]["name"]
    group_id = load_example("consumer-group.yaml")["metadata"]["name"]
    partitions = example_stream_partitions()
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name=stream_name, partitions=partitions))
        reader = store.consumer_groups()

        async def append(count: int) -> None:
            for number in range(count):
                await store.append(stream_name, EventData("OrderPlaced", {"n": number}), partition=number % partitions)

        async def runtime_lag() -> int:
            return (await reader.describe(stream_name, group_id)).lag_events

        await append(20)
        with pytest.raises(GroupNotFoundError):
            await runtime_lag()
        assert await query_lag(postgres_dsn) == 0  # no group yet: nothing to measure

        consumption = reader.consume(stream_name, group_id=group_id, consumer_id="worker-1", options=MANUAL)
        received = 0
        async with asyncio.timeout(20):
            async for _ in consumption:
                received += 1
                if received == 20:
                    break
        assert await runtime_lag() == 20  # delivered, nothing committed
        assert await query_lag(postgres_dsn) == 20

        await reader.commit(stream_name, group_id=group_id, consumer_id="worker-1", offsets={0: 5, 1: 2})
        assert await runtime_lag() == 13
        assert await query_lag(postgres_dsn) == 13

        await append(6)
        assert await runtime_lag() == 19
        assert await query_lag(postgres_dsn) == 19

        await consumption.aclose(processed=False)
        assert await query_lag(postgres_dsn) == await runtime_lag() == 19  # leaving commits nothing (MANUAL)

        other_group = "audit"
        async with reader.consume(stream_name, group_id=other_group, consumer_id="worker-2", options=MANUAL) as other:
            async with asyncio.timeout(20):
                async for _ in other:
                    break
            await reader.commit(stream_name, group_id=other_group, consumer_id="worker-2", offsets={0: 7})
        # Another group's commits do not leak into this group's lag.
        assert await query_lag(postgres_dsn) == await runtime_lag() == 19
