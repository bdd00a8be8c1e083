"""Fixtures of the fault-injection suite: a dedicated PostgreSQL server per fault test (faults would
disturb every other test on a shared one), and one dedicated server per module for the tests that fault
members rather than the database."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from sluice.storage.postgres.embedded import EmbeddedPostgres
from tests.faults.database import FaultyDatabase, create_database, fault_server_settings

_database_numbers = itertools.count(1)


@pytest.fixture
async def faulty_database() -> AsyncIterator[FaultyDatabase]:
    """A migrated database on a server of its own, which the test may kill, restart or freeze."""
    server = EmbeddedPostgres(fault_server_settings())
    await asyncio.to_thread(server.start)
    try:
        faulty = FaultyDatabase(server)
        await create_database(server, faulty.database)
        yield faulty
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(scope="module")
def member_fault_server() -> Iterator[EmbeddedPostgres]:
    """A server of this module's own, for tests that fault members (the database stays up)."""
    with EmbeddedPostgres(fault_server_settings()) as server:
        yield server


@pytest.fixture
async def member_fault_dsn(member_fault_server: EmbeddedPostgres) -> str:
    """A new migrated database on the module's server."""
    return await create_database(member_fault_server, f"members_{next(_database_numbers)}")
