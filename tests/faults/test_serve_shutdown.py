"""``sluice serve`` receiving SIGTERM while its database hangs (the postmaster and every backend
SIGSTOPped: connections stay open, nothing answers) must exit within its grace period, with calls in
flight on both doors, instead of waiting for the database forever: within the grace period plus the
fixed time allowed for closing the store, which is what a pod's termination grace period must cover."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

import sluice
from sluice import EventData, StreamConfig
from sluice.client import SluiceClient
from tests.faults.database import FaultyDatabase
from tests.faults.serve_process import ServeProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(60)]

GRACE_SECONDS = 2.0
CLOSE_SECONDS = 5.0
"""After the grace period, stopping the background workers and closing the store may take this long
(``sluice.serving.serve.DEFAULT_CLOSE_SECONDS``)."""
SLACK_SECONDS = CLOSE_SECONDS + 3.0
"""Beyond the grace period: the close above, then the interpreter's exit on a loaded machine."""


async def test_sigterm_ends_serve_within_its_grace_period_while_the_database_hangs(
    faulty_database: FaultyDatabase, tmp_path: Path
) -> None:
    async with await sluice.connect(faulty_database.dsn) as setup:
        await setup.create_stream(StreamConfig(name="orders"))
    gateway = ServeProcess(faulty_database.dsn, tmp_path, grace_seconds=GRACE_SECONDS)
    await asyncio.to_thread(gateway.start)
    try:
        async with (
            await SluiceClient.connect(gateway.grpc_target) as client,
            httpx.AsyncClient(base_url=gateway.http_url, timeout=30) as http,
        ):
            await client.append("orders", [EventData("E", {"n": 0})])  # the gateway's pool holds connections
            assert (await http.get("/api/event-streams")).status_code == 200
            faulty_database.server.pause()
            in_flight = [
                asyncio.create_task(client.append("orders", [EventData("E", {"n": 1})], deadline_seconds=30)),
                asyncio.create_task(http.get("/api/event-streams/orders")),
            ]
            try:
                await asyncio.sleep(0.5)
                code, took = await asyncio.to_thread(gateway.terminate, GRACE_SECONDS + SLACK_SECONDS)
            finally:
                faulty_database.server.resume()
                for call in in_flight:
                    call.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.gather(*in_flight, return_exceptions=True)
    finally:
        await asyncio.to_thread(gateway.stop)
    print(f"SHUTDOWN sluice-serve database-hang: exit {code} after {took:.1f} s")
    assert code is not None, (
        f"sluice serve was still running {GRACE_SECONDS + SLACK_SECONDS:.0f} s after SIGTERM with the database hung:\n"
        + gateway.log_tail()
    )
    assert code == 0, gateway.log_tail()
