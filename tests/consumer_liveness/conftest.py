"""Fixtures of the consumer-liveness tests: ``store`` on both backends, and a dedicated PostgreSQL
server (never the shared one: these tests kill it with SIGKILL and start it again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sluice.backends.postgres import migrations
from sluice.embedded_postgres import EmbeddedPostgres, ServerSettings
from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)

DATABASE = "liveness"


@pytest.fixture
async def killable_server() -> AsyncIterator[EmbeddedPostgres]:
    """A server of this test's own with a migrated database ``liveness``; commits survive a SIGKILL."""
    server = EmbeddedPostgres(ServerSettings(crash_safe_commits=True, max_connections=60, shared_buffers="32MB"))
    await asyncio.to_thread(server.start)
    try:
        admin = await asyncpg.connect(server.dsn("postgres"))
        try:
            await admin.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await admin.close()
        connection = await asyncpg.connect(server.dsn(DATABASE))
        try:
            await migrations.migrate(connection, "sluice")
        finally:
            await connection.close()
        yield server
    finally:
        await asyncio.to_thread(server.stop)
