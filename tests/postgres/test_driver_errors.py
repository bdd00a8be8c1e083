"""The PostgreSQL backend's one driver-error translator (issue 16 item 9, issue 17 step 3): whatever
the driver raises reaches callers as a Sluice error of the right category, through every module that
uses the store's pool, and the backend itself still sees the raw errors it handles (deadlocks,
unique violations)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import sluice
from sluice import ConnectionLostError, EventData, InvalidArgumentError, MigrationError
from sluice.core.errors import DatabaseBusyError, SluiceError, StoreClosedError, UnavailableError
from sluice.storage.postgres.driver_errors import is_deadlock, translate
from sluice.storage.postgres.store import PostgresEventStore

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        (asyncpg.CannotConnectNowError("the database system is starting up"), ConnectionLostError),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), ConnectionLostError),
        (asyncpg.InternalClientError("unexpected connection state"), ConnectionLostError),
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), ConnectionLostError),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), ConnectionLostError),
        (
            asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
            ConnectionLostError,
        ),
        (asyncpg.InterfaceError("connection is closed"), ConnectionLostError),
        (ConnectionRefusedError(111, "Connection refused"), ConnectionLostError),
        (TimeoutError(), ConnectionLostError),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), DatabaseBusyError),
        (asyncpg.DeadlockDetectedError("deadlock detected"), DatabaseBusyError),
        (asyncpg.SerializationError("could not serialize access"), DatabaseBusyError),
        (asyncpg.DiskFullError("could not extend file"), DatabaseBusyError),
        (asyncpg.NumericValueOutOfRangeError("bigint out of range"), InvalidArgumentError),
        (asyncpg.DatetimeFieldOverflowError("date/time field value out of range"), InvalidArgumentError),
        (OverflowError("date value out of range"), InvalidArgumentError),
        (asyncpg.InvalidSchemaNameError('schema "sluice" does not exist'), MigrationError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.__name__,
)
def test_each_driver_error_becomes_a_typed_error(driver_error: Exception, expected: type[SluiceError]) -> None:
    translated = translate(driver_error)
    assert type(translated) is expected
    assert str(driver_error) in str(translated) or not str(driver_error)


@pytest.mark.parametrize(
    "untouched",
    [
        asyncpg.UniqueViolationError("duplicate key"),  # the backend handles it (deduplication)
        asyncpg.PostgresSyntaxError("syntax error"),  # a bug: must not look like a transient failure
        ValueError("not a driver error"),
        ConnectionLostError("already typed"),
    ],
    ids=lambda value: type(value).__name__,
)
def test_errors_that_are_not_translated(untouched: Exception) -> None:
    assert translate(untouched) is None


def test_a_translated_deadlock_is_still_recognised_for_the_retry() -> None:
    busy = translate(asyncpg.DeadlockDetectedError("deadlock detected"))
    assert busy is not None
    busy.__cause__ = asyncpg.DeadlockDetectedError("deadlock detected")
    assert is_deadlock(busy)
    assert not is_deadlock(DatabaseBusyError("a statement timeout"))


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[PostgresEventStore]:
    opened = await sluice.connect(postgres_dsn, pool_min_size=1, pool_max_size=2)
    assert isinstance(opened, PostgresEventStore)
    yield opened
    await opened.close()


async def test_a_terminated_connection_is_connection_lost_then_the_pool_recovers(
    store: PostgresEventStore, postgres_dsn: str
) -> None:
    """The backend is terminated while a statement runs on it (an idle connection terminated beforehand
    may be noticed and replaced by the pool before it is used, which made this test a race)."""
    await store.append("orders", EventData("Placed", {}))

    async def terminate(pid: int) -> None:
        await asyncio.sleep(0.3)
        admin = await asyncpg.connect(postgres_dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

    async def sleep_on_a_connection_that_gets_terminated() -> None:
        async with store.acquire() as connection:
            pid = await connection.fetchval("SELECT pg_backend_pid()")
            terminating = asyncio.create_task(terminate(pid))
            try:
                await connection.execute("SELECT pg_sleep(30)")
            finally:
                await terminating

    with pytest.raises(ConnectionLostError) as raised:
        await sleep_on_a_connection_that_gets_terminated()
    assert not isinstance(raised.value.__cause__, SluiceError)
    assert (await store.get_stream("orders")).head == 1


async def test_errors_escaping_an_acquired_connection_are_translated(store: PostgresEventStore) -> None:
    async with store.acquire() as connection:
        await connection.execute("SET statement_timeout = 10")
        with pytest.raises(asyncpg.QueryCanceledError):  # inside the block: the driver's own error
            await connection.execute("SELECT pg_sleep(1)")
        # The pool resets the connection on release: with 10 ms left a loaded machine could cancel that too.
        await connection.execute("SET statement_timeout = 0")
    with pytest.raises(DatabaseBusyError):
        async with store.acquire() as connection:
            await connection.execute("SET statement_timeout = 10; SELECT pg_sleep(1)")
    with pytest.raises(InvalidArgumentError):
        async with store.acquire() as connection:
            await connection.fetchval("SELECT $1::bigint", 2**63)
    with pytest.raises(InvalidArgumentError):
        async with store.acquire() as connection:
            await connection.fetchval("SELECT 9223372036854775807::bigint + 1")
    assert isinstance(DatabaseBusyError("x"), UnavailableError)


async def test_sagas_replays_and_dead_letters_share_the_translation(store: PostgresEventStore) -> None:
    """The saga repository, replay records and group dead letters borrow the store's pool, so they raise
    Sluice errors (not asyncpg's "pool is closed" InterfaceError) once the pool is gone; a pool closed on
    purpose is StoreClosedError, not an outage to wait out."""
    await store.database.pool.close()  # the next acquire fails with the driver's InterfaceError
    with pytest.raises(StoreClosedError):
        await store.backend.sagas.get(uuid.uuid4())
    with pytest.raises(StoreClosedError):
        await store.backend.replays.get("nightly")


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_server_is_connection_lost(postgres_dsn: str) -> None:
    parts = urlsplit(postgres_dsn)
    user = parts.username or "postgres"
    unreachable = urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{_unused_port()}"))
    with pytest.raises(ConnectionLostError):
        await sluice.connect(unreachable)


async def test_too_many_connections_is_connection_lost(postgres_dsn: str) -> None:
    role = f"limited_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
        parts = urlsplit(postgres_dsn)
        host = parts.netloc.rpartition("@")[2]
        limited = urlunsplit(parts._replace(netloc=f"{role}@{host}"))
        with pytest.raises(ConnectionLostError, match="too many connections"):
            await sluice.connect(limited)
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_a_missing_schema_is_a_migration_error(fresh_database: str) -> None:
    with pytest.raises(MigrationError):
        await sluice.connect(fresh_database, migrate=False)
