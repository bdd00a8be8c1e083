"""Fixtures of the REST tests: a store per backend, the app over it with one token, and an httpx
client that calls the app in process (ASGI transport, no server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

import sluice
from sluice import EventStore
from sluice.observability.metrics import SluiceMetrics
from sluice.rest import create_app
from sluice.security import BearerTokens

TOKEN = "secret-token"
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    opened = await sluice.connect(store_url, poll_interval=timedelta(milliseconds=100))
    yield opened
    await opened.close()


@pytest.fixture
def metrics() -> SluiceMetrics:
    return SluiceMetrics()


@pytest.fixture
def app(store: EventStore, metrics: SluiceMetrics) -> FastAPI:
    return create_app(store, tokens=BearerTokens({TOKEN: "ada"}), metrics=metrics, lag_refresh_interval=None)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened
