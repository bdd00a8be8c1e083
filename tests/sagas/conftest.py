"""Saga tests run once per backend: ``store`` is parametrized over memory and PostgreSQL (a fresh
database per test), and ``repository`` is the saga repository beside it."""

from __future__ import annotations

import pytest

from sluice import EventStore
from sluice.services.sagas import SagaRepository, saga_repository
from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)


@pytest.fixture
def repository(store: EventStore) -> SagaRepository:  # noqa: F811
    return saga_repository(store)
