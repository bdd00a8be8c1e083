"""check_stream_health and readiness against real stores: degraded when a group's lag passes its
threshold, unhealthy (and not ready) when PostgreSQL stops."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig, StreamNotFoundError
from sluice.observability.health import (
    HealthStatus,
    HealthThresholds,
    LagThresholds,
    check_readiness,
    check_stream_health,
)
from sluice.observability.health.model import ReasonCode
from sluice.storage.postgres import migrations
from sluice.storage.postgres.embedded import EmbeddedPostgres
from sluice.storage.postgres.store import PostgresEventStore
from sluice.store import BackendCheck

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)
LIMITS = HealthThresholds(lag=LagThresholds(degraded_events=3, degraded_seconds=None))


async def consume_one(store: EventStore, stream: str, group: str) -> None:
    async with store.consumer_groups().consume(stream, group_id=group, consumer_id="w", options=FAST) as events:
        async for _event in events:
            break


async def test_a_group_falling_behind_its_threshold_makes_the_stream_degraded(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [EventData("E", {"n": n}) for n in range(3)])
    await consume_one(store, "orders", "email")  # committed 1 of 3: lag 2
    healthy = await check_stream_health(store, "orders", thresholds=LIMITS)
    assert healthy.status is HealthStatus.HEALTHY, healthy.reasons
    await store.append("orders", [EventData("E", {"n": n}) for n in range(2)])  # lag 4 > 3
    degraded = await check_stream_health(store, "orders", thresholds=LIMITS)
    assert degraded.status is HealthStatus.DEGRADED
    assert [(reason.code, reason.group_id) for reason in degraded.reasons] == [(ReasonCode.LAG_EVENTS, "email")]


async def test_dead_letters_degrade_a_queue(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=sluice.StreamType.EPHEMERAL, max_attempts=1))
    await store.enqueue("jobs", EventData("Job", {}))
    message = await store.dequeue("jobs")
    assert message is not None
    assert (await check_stream_health(store, "jobs")).status is HealthStatus.HEALTHY
    await store.nack("jobs", message.receipt, reason="broken")
    health = await check_stream_health(store, "jobs")
    assert health.status is HealthStatus.DEGRADED
    assert [reason.code for reason in health.reasons] == [ReasonCode.DEAD_LETTERS]


async def test_an_unknown_stream_raises(store: EventStore) -> None:
    with pytest.raises(StreamNotFoundError):
        await check_stream_health(store, "missing")


async def test_the_store_says_which_backend_serves_and_at_which_schema_version(store: EventStore) -> None:
    check = await store.check_backend()
    if check.backend == "postgresql":
        assert check.schema_name == store.options.schema_name
        assert check.schema_version == migrations.latest_version()
    else:
        assert check == BackendCheck(backend="memory")


async def test_the_memory_store_is_always_ready() -> None:
    async with await sluice.connect("memory://") as store:
        readiness = await check_readiness(store)
    assert readiness.ready
    assert readiness.backend == "memory"


@pytest.mark.postgres
async def test_postgres_readiness_needs_a_current_schema(postgres_dsn: str, fresh_database: str) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        readiness = await check_readiness(store)
        assert readiness.ready, readiness.detail
        assert readiness.schema_version is not None
        # The same store pointed at a schema that was never migrated is not ready.
        unmigrated = await sluice.connect(fresh_database, migrate=True, schema_name="other")
        try:
            assert isinstance(unmigrated, PostgresEventStore)
            await unmigrated.database.pool.execute("DROP SCHEMA other CASCADE")
            not_ready = await check_readiness(unmigrated)
        finally:
            await unmigrated.close()
    assert not not_ready.ready
    assert "sluice migrate" in not_ready.detail


@pytest.mark.postgres
@pytest.mark.slow
async def test_the_stream_turns_unhealthy_and_not_ready_when_postgres_stops() -> None:
    server = EmbeddedPostgres()
    await asyncio.to_thread(server.start)
    try:
        store = await sluice.connect(server.dsn(), migrate=True, poll_interval=timedelta(milliseconds=100))
        try:
            await store.create_stream(StreamConfig(name="orders"))
            assert (await check_stream_health(store, "orders")).status is HealthStatus.HEALTHY
            assert (await check_readiness(store)).ready
            await asyncio.to_thread(server.stop)
            health = await check_stream_health(store, "orders", probe_timeout=timedelta(seconds=5))
            assert health.status is HealthStatus.UNHEALTHY
            assert [reason.code for reason in health.reasons] == [ReasonCode.DATABASE_UNREACHABLE]
            readiness = await check_readiness(store, probe_timeout=timedelta(seconds=5))
            assert not readiness.ready
            assert "could not be reached" in readiness.detail
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(server.stop)
