"""Fixtures of the REST tests: a store per backend, the app over it with one token, and an httpx
client that calls the app in process (ASGI transport, no server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from sluice import EventStore
from sluice.observability.metrics import SluiceMetrics
from sluice.rest import create_app
from sluice.security import BearerTokens
from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)

TOKEN = "secret-token"
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def metrics() -> SluiceMetrics:
    return SluiceMetrics()


@pytest.fixture
def app(store: EventStore, metrics: SluiceMetrics) -> FastAPI:  # noqa: F811  (the shared store fixture)
    return create_app(store, tokens=BearerTokens({TOKEN: "ada"}), metrics=metrics, lag_refresh_interval=None)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened
