"""A subscription survives a restart of the server process: it reconnects and resumes from its
checkpoint, with no event skipped and none delivered twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import sluice
from sluice.client import SluiceClient
from sluice.core.events import EventData
from tests.grpc_api.server_process import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_subscription_resumes_from_its_checkpoint_after_a_server_restart(
    server_process: ServerProcess, postgres_dsn: str
) -> None:
    async with (
        await sluice.connect(postgres_dsn) as store,
        await SluiceClient.connect(server_process.target) as client,
    ):
        await store.append("orders", [EventData("Placed", {"n": n}) for n in range(100)])
        subscription = client.subscribe("orders", checkpoint_interval=timedelta(milliseconds=100))
        received: list[int] = []
        try:
            async for event in subscription:
                received.append(event.data["n"])
                if len(received) == 100:
                    break
            assert subscription.reconnects == 0

            # Restart the server (SIGTERM: it drains, ending the stream with UNAVAILABLE) while
            # events keep arriving from another writer.
            await asyncio.to_thread(server_process.restart)
            await store.append("orders", [EventData("Placed", {"n": n}) for n in range(100, 150)])

            async for event in subscription:
                received.append(event.data["n"])
                if len(received) == 150:
                    break
        finally:
            await subscription.aclose()
        assert received == list(range(150))
        assert subscription.reconnects >= 1
        assert subscription.next_offset == 150
