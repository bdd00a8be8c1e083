"""Fixtures of the dead-letter tests: a store per backend (memory and PostgreSQL), a real HTTP
receiver, and a worker runner that starts a ConsumerWorker and stops it cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sinks.receiver import Receiver, running_receiver
from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
