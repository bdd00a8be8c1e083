"""A dedicated PostgreSQL server whose faults a test injects: kill -9 and a restart about a second later,
a fast restart, every backend of the database terminated, or the whole server frozen (SIGSTOP).

Each fault test gets its own server (never the shared one of tests/conftest.py, which other tests use at
the same time). Commits are crash-safe (``synchronous_commit`` on), so an acknowledged append survives a
SIGKILL; only fsync stays off, which matters for an OS crash, not a process crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import time
from collections.abc import AsyncIterator

import asyncpg

from sluice.storage.postgres import migrations
from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings

DATABASE = "sluice"
SCHEMA = "sluice"
KILLED_FOR_SECONDS = 1.0
"""How long the server stays dead after kill -9 before it is started again."""


class Fault(enum.StrEnum):
    """A database fault. Its value names it in test ids and in the resume report."""

    KILL_9 = "kill-9"
    """SIGKILL the postmaster and every backend; start it again (crash recovery) a second later."""
    FAST_RESTART = "fast-restart"
    """``pg_ctl restart -m fast``: SIGINT (clients are disconnected), then start on the same port."""
    BACKEND_KILL = "backend-kill"
    """``pg_terminate_backend`` of every connection to the database (the server itself stays up)."""


DATABASE_FAULTS = (Fault.KILL_9, Fault.FAST_RESTART, Fault.BACKEND_KILL)


def fault_server_settings() -> ServerSettings:
    return ServerSettings(crash_safe_commits=True, max_connections=150, shared_buffers="32MB")


@dataclasses.dataclass
class FaultyDatabase:
    """A migrated database on a server of its own, and the faults that can be done to it."""

    server: EmbeddedPostgres
    database: str = DATABASE

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.database)

    @property
    def admin_dsn(self) -> str:
        return self.server.dsn("postgres")

    async def inject(self, fault: Fault) -> float:
        """Do ``fault`` and wait until the database accepts connections again. Runs in a thread, so
        that the test's own producers and consumers keep running meanwhile. Returns the wall-clock
        time (``time.time()``) at which the database was back."""
        started = time.time()
        if fault is Fault.BACKEND_KILL:
            ended = await terminate_backends(self.admin_dsn, self.database)
            print(f"FAULT {fault}: {ended} backends terminated", flush=True)
        else:
            await asyncio.to_thread(self.crash_and_restart, fault)
        back_at = time.time()
        print(f"FAULT {fault}: the database was back after {back_at - started:.1f} s", flush=True)
        return back_at

    def crash_and_restart(self, fault: Fault) -> None:
        if fault is Fault.KILL_9:
            self.server.kill()
            time.sleep(KILLED_FOR_SECONDS)
        self.server.restart()


async def terminate_backends(admin_dsn: str, database: str) -> int:
    """``pg_terminate_backend`` every connection to ``database`` but this one; how many were ended."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        ended: int = await admin.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await admin.close()
    return ended


@contextlib.asynccontextmanager
async def killable_server(database: str, settings: ServerSettings | None = None) -> AsyncIterator[EmbeddedPostgres]:
    """A server of the caller's own (never the shared one: it may be killed) with a migrated ``database``;
    commits survive a SIGKILL. Stopped (and resumed first, if frozen) at the end."""
    server = EmbeddedPostgres(settings or fault_server_settings())
    await asyncio.to_thread(server.start)
    try:
        await create_database(server, database)
        yield server
    finally:
        server.resume()  # (a no-op unless it was left frozen)
        await asyncio.to_thread(server.stop)


async def create_database(server: EmbeddedPostgres, name: str) -> str:
    """A new database with Sluice's schema on ``server``; its DSN."""
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    connection = await asyncpg.connect(server.dsn(name))
    try:
        await migrations.migrate(connection, SCHEMA)
    finally:
        await connection.close()
    return server.dsn(name)
