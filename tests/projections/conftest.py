"""Projections run against both backends where that applies (``store``), and against PostgreSQL alone for
same-database mode and declarative SQL targets (``postgres_store``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import sluice
from sluice.storage.postgres.store import PostgresEventStore
from tests.store_fixtures import FAST_POLL, store, store_url  # noqa: F401  (shared fixtures)


@pytest.fixture
async def postgres_store(postgres_dsn: str) -> AsyncIterator[PostgresEventStore]:
    opened = await sluice.connect(postgres_dsn, poll_interval=FAST_POLL)
    assert isinstance(opened, PostgresEventStore)
    yield opened
    await opened.close()
