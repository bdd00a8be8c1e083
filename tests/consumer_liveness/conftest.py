"""Fixtures of the consumer-liveness tests: ``store`` on both backends, and a dedicated PostgreSQL
server (never the shared one: these tests kill it with SIGKILL and start it again)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings
from tests.faults.database import killable_server as killable_postgres
from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)

DATABASE = "liveness"
SERVER_SETTINGS = ServerSettings(crash_safe_commits=True, max_connections=60, shared_buffers="32MB")


@pytest.fixture
async def killable_server() -> AsyncIterator[EmbeddedPostgres]:
    """A server of this test's own with a migrated database ``liveness``; commits survive a SIGKILL."""
    async with killable_postgres(DATABASE, SERVER_SETTINGS) as server:
        yield server
