"""TranslatingPool.release without asyncpg's asyncio.shield when the release does not wait: idle connections go
back at once, and a release that waits (a rollback of a transaction left open) still completes when the
caller is cancelled, as under the shield. Runs against the test PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sluice.storage.postgres.driver_errors import TranslatingPool, create_translating_pool

pytestmark = pytest.mark.postgres


async def _keep_session(connection: object) -> None:
    """As the store's pool: no reset query on release."""


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[TranslatingPool]:
    opened = await create_translating_pool(postgres_dsn, min_size=1, max_size=1, reset=_keep_session)
    try:
        yield opened
    finally:
        await opened.close()


async def test_an_idle_connection_goes_back_without_a_turn_of_the_event_loop(pool: TranslatingPool) -> None:
    connection = await pool.acquire()
    await connection.fetchval("SELECT 1")
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    before = turns
    await pool.release(connection)
    after = turns
    counter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await counter
    assert after == before  # asyncpg's shielded release takes at least one turn
    assert pool.get_idle_size() == 1
    assert await pool.fetchval("SELECT 2") == 2


async def test_a_release_that_rolls_back_completes_though_the_caller_is_cancelled(pool: TranslatingPool) -> None:
    connection = await pool.acquire()
    await connection.execute("BEGIN")  # an unmanaged transaction: release must send ROLLBACK and wait
    await connection.execute("CREATE TEMPORARY TABLE left_open (n int)")
    releasing = asyncio.create_task(pool.release(connection))
    await asyncio.sleep(0)  # the release has sent its ROLLBACK and waits for the answer
    releasing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await releasing
    async with asyncio.timeout(10):
        again = await pool.acquire()  # the one connection came back (the shielded rest of the release ran)
    try:
        assert not again.is_in_transaction()
        assert await again.fetchval("SELECT to_regclass('pg_temp.left_open') IS NULL")  # rolled back
    finally:
        await pool.release(again)


async def test_releasing_twice_behaves_as_asyncpg(pool: TranslatingPool) -> None:
    connection = await pool.acquire()
    await pool.release(connection)
    await pool.release(connection)  # already released: nothing happens
    assert pool.get_idle_size() == 1
