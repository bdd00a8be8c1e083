"""``store`` and ``store_url``: one store per backend (memory, and a real PostgreSQL with a fresh database per
test), shared by every suite that runs against both. A conftest imports them to use them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

import sluice
from sluice import EventStore

FAST_POLL = timedelta(milliseconds=100)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    opened = await sluice.connect(store_url, poll_interval=FAST_POLL)
    yield opened
    await opened.close()
