"""Sagas and retention on PostgreSQL go through the backend's one driver-error translator (issue 17 step 3:
the saga repository's own copy missed an error class, and retention translated nothing).

Each test blocks one real statement of the service (a table locked from another connection), finds its
backend in ``pg_stat_activity``, and ends it from that other connection: ``pg_terminate_backend`` (the
connection is lost) or ``pg_cancel_backend`` (the server refused the work for now). The service must raise
the typed Sluice error with the driver's error as its cause, and work again once the lock is gone."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

import sluice
from sluice import EventData, EventStore
from sluice.core.errors import ConnectionLostError, DatabaseBusyError, SluiceError
from sluice.services.retention import RetentionLimits, list_policies, prune_stream
from sluice.services.sagas import HistoryEntry, SagaInstance, SagaStatus, saga_id_for, saga_repository
from sluice.storage.postgres.queries import named_queries
from sluice.store.values.sagas import StepPhase

pytestmark = pytest.mark.postgres

TERMINATE = "pg_terminate_backend"
CANCEL = "pg_cancel_backend"


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    opened = await sluice.connect(postgres_dsn, pool_min_size=1, pool_max_size=2)
    yield opened
    await opened.close()


@contextlib.asynccontextmanager
async def table_locked(dsn: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """Another connection holding ``table`` in ACCESS EXCLUSIVE mode (every statement on it waits)."""
    admin = await asyncpg.connect(dsn)
    try:
        async with admin.transaction():
            await admin.execute(f"LOCK TABLE sluice.{table} IN ACCESS EXCLUSIVE MODE")
            yield admin
    finally:
        await admin.close()


async def waiting_backend(admin: asyncpg.Connection, statement: str) -> int:
    """The process id of the backend whose ``statement`` waits for the lock. (``admin`` is in a transaction,
    which sees one snapshot of ``pg_stat_activity`` unless it is cleared.)"""
    for _ in range(500):
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock' AND left(query, 60) = left($1, 60)",
            statement,
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.02)
    waiting = await admin.fetch(
        "SELECT state, wait_event_type, query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    raise AssertionError(
        f"the statement never waited for the lock; the other backends: {[dict(row) for row in waiting]}"
    )


async def interrupted(
    dsn: str, table: str, statement: str, how: str, operation: Callable[[], Awaitable[Any]]
) -> SluiceError:
    """What ``operation`` raises when its ``statement``, waiting on ``table``, is ended ``how``."""
    async with table_locked(dsn, table) as admin:
        running = asyncio.create_task(operation())
        try:
            pid = await waiting_backend(admin, statement)
            assert await admin.fetchval(f"SELECT {how}($1)", pid)
            with pytest.raises(SluiceError) as raised:
                await running
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    assert isinstance(raised.value.__cause__, asyncpg.PostgresError | asyncpg.InterfaceError)
    return raised.value


def a_saga() -> SagaInstance:
    return SagaInstance(
        saga_id=saga_id_for("orders", "order-1"),
        saga_name="orders",
        correlation_id="order-1",
        status=SagaStatus.RUNNING,
        current_step="reserve",
        phase=StepPhase.PENDING,
        attempt=1,
        completed_steps=(),
        to_compensate=(),
        reply=None,
        failure=None,
        context={"order_id": "order-1"},
        version=1,
    )


async def test_a_saga_read_whose_connection_is_terminated_is_connection_lost(
    store: EventStore, postgres_dsn: str
) -> None:
    repository = saga_repository(store)
    saga = a_saga()
    assert await repository.create(saga, [HistoryEntry("saga_started")])

    error = await interrupted(
        postgres_dsn,
        "saga_instances",
        named_queries("sagas.sql")["get_saga"],
        TERMINATE,
        lambda: repository.load(saga.saga_id),
    )

    assert type(error) is ConnectionLostError
    assert await repository.load(saga.saga_id) is not None


async def test_a_saga_save_whose_statement_is_cancelled_is_database_busy_and_saves_nothing(
    store: EventStore, postgres_dsn: str
) -> None:
    repository = saga_repository(store)
    saga = a_saga()
    assert await repository.create(saga, [HistoryEntry("saga_started")])
    moved = dataclasses.replace(saga, current_step="charge")

    error = await interrupted(
        postgres_dsn,
        "saga_instances",
        named_queries("sagas.sql")["save_saga"],
        CANCEL,
        lambda: repository.save(moved, [HistoryEntry("step_started", step="charge")]),
    )

    assert type(error) is DatabaseBusyError
    loaded = await repository.load(saga.saga_id)
    assert loaded is not None
    assert (loaded.version, loaded.current_step) == (1, "reserve")
    saved = await repository.save(moved, [HistoryEntry("step_started", step="charge")])
    assert (saved.version, saved.current_step) == (2, "charge")


async def test_a_retention_policy_read_whose_connection_is_terminated_is_connection_lost(
    store: EventStore, postgres_dsn: str
) -> None:
    error = await interrupted(
        postgres_dsn,
        "retention_policies",
        named_queries("retention.sql")["retention_list_policies"],
        TERMINATE,
        lambda: list_policies(store),
    )

    assert type(error) is ConnectionLostError
    assert await list_policies(store) == []


@pytest.mark.parametrize(("how", "expected"), [(TERMINATE, ConnectionLostError), (CANCEL, DatabaseBusyError)])
async def test_a_prune_whose_delete_is_interrupted_raises_the_typed_error_and_deletes_nothing(
    store: EventStore, postgres_dsn: str, how: str, expected: type[SluiceError]
) -> None:
    stream = f"orders-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [EventData("Placed", {"n": n}) for n in range(5)])
    limits = RetentionLimits(max_event_count=2, enforce=True)

    error = await interrupted(
        postgres_dsn,
        "events",
        named_queries("retention.sql")["retention_delete_batch"],
        how,
        lambda: prune_stream(store, stream, limits),
    )

    assert type(error) is expected
    assert (await store.get_stream(stream)).partition_heads[0].first_offset == 0
    report = await prune_stream(store, stream, limits)
    assert report.pruned_events == 3
