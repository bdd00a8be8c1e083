"""A replay into a projection: the projection's runner (here in this process, as its ``sluice project`` pod
would run it) is asked to rebuild, rebuilds from the start of its sources, and the replay follows the
rebuild's progress to the end. PostgreSQL: the request travels through the projection's stored checkpoint."""

from __future__ import annotations

import asyncio

import pytest

import sluice
from sluice import EventData, RecordedEvent, StreamConfig
from sluice.services.projections import Projection, ProjectionContext, ProjectionRunner
from sluice.services.replay import ReplayRequest, Replays, ReplayState, ReplayTargetKind

pytestmark = pytest.mark.postgres


async def test_a_replay_into_a_projection_rebuilds_it_and_waits_for_the_rebuild(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="payments"))
        await store.append("payments", [EventData("Paid", {"n": n}) for n in range(6)])
        applied: list[object] = []
        projection = Projection("payment-totals", sources=["payments"])

        @projection.on("Paid")
        async def paid(event: RecordedEvent, context: ProjectionContext) -> None:
            applied.append(event.data["n"])

        @projection.on_reset
        async def reset(context: ProjectionContext) -> None:
            applied.append("reset")

        runner = ProjectionRunner(projection, store)
        await runner.run_until_caught_up()
        assert applied == [0, 1, 2, 3, 4, 5]
        running = asyncio.create_task(runner.run())
        try:
            request = ReplayRequest(
                name="rebuild-totals",
                stream="payments",
                from_offset=0,
                target=ReplayTargetKind.PROJECTION,
                target_name="payment-totals",
            )
            progress = await asyncio.wait_for(Replays(store, group_poll_seconds=0.05).start(request), 30)
        finally:
            runner.stop()
            await asyncio.wait_for(running, 10)
    assert progress.state is ReplayState.SUCCEEDED
    assert (progress.events_done, progress.events_total, progress.percent) == (6, 6, 100)
    assert applied[6:] == ["reset", 0, 1, 2, 3, 4, 5]  # rebuilt once, from the start
