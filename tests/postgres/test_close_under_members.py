"""Closing a PostgreSQL store while consumer-group members run: the members stop with StoreClosedError
instead of taking the closed pool ("pool is closed") for a database outage and retrying it with backoff,
logging "heartbeat failed, the database is unavailable" until the process exits (seen in the
consumer-groups benchmark before the translating pool knew that it was being closed)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

import sluice
from sluice import ConsumerGroupOptions, EventData, StoreClosedError, StreamConfig
from sluice.storage.postgres.driver_errors import translate

pytestmark = pytest.mark.postgres


async def test_members_stop_with_store_closed_when_the_store_closes(
    postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await sluice.connect(postgres_dsn, pool_min_size=1, pool_max_size=4)
    await store.create_stream(StreamConfig(name="closing", partitions=2))
    await store.append("closing", [EventData("E", {"n": n}) for n in range(4)], partition=0)
    options = ConsumerGroupOptions(session_timeout=timedelta(seconds=2), heartbeat_interval=timedelta(seconds=0.1))
    first_batch = asyncio.Event()

    async def consume(consumer_id: str) -> BaseException | None:
        try:
            async for _batch in store.consumer_groups().consume_batches(
                "closing", group_id="g", consumer_id=consumer_id, options=options
            ):
                first_batch.set()
        except Exception as error:  # the test inspects what ended the consumption
            return error
        return None

    caplog.set_level(logging.WARNING, logger="sluice")
    members = [asyncio.create_task(consume(f"m{number}")) for number in range(2)]
    await asyncio.wait_for(first_batch.wait(), 20)
    await asyncio.sleep(0.3)  # heartbeats and idle reads in flight
    await store.close()

    endings = await asyncio.wait_for(asyncio.gather(*members), 15)
    assert all(isinstance(ending, StoreClosedError) for ending in endings), endings
    retried = [record.getMessage() for record in caplog.records if "database is unavailable" in record.getMessage()]
    assert retried == []


async def test_a_lost_connection_of_an_open_pool_is_still_an_outage(postgres_dsn: str) -> None:
    """The other side: an open pool's broken connection stays ConnectionLostError (members wait it out)."""
    store = await sluice.connect(postgres_dsn, pool_min_size=1, pool_max_size=2)
    try:
        database = store.backend.database
        assert database is not None
        with pytest.raises(sluice.ConnectionLostError):
            async with database.acquire() as connection:
                await connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert not isinstance(translate(ConnectionError("reset")), StoreClosedError)
    finally:
        await store.close()
