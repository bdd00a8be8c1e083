"""``Replays.start()`` returns the final progress as recorded (issue 16 item 14): ``finished_at`` and
``updated_at`` are the stored ones, on both backends, for a replay that succeeded or was cancelled."""

from __future__ import annotations

from collections.abc import Sequence

from sluice import EventData, EventStore, StreamConfig
from sluice.core.events import RecordedEvent
from sluice.services.replay import ReplayRequest, Replays, ReplayState, ReplayTargetKind


async def _fill(store: EventStore, count: int) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [EventData("Numbered", {"n": n}) for n in range(count)])


async def test_a_finished_replay_returns_its_recorded_finish_time(store: EventStore) -> None:
    await _fill(store, 12)
    seen: list[int] = []

    async def handler(events: Sequence[RecordedEvent]) -> None:
        seen.extend(event.offset for event in events)

    request = ReplayRequest(name="done", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, batch_size=5)
    replays = Replays(store)
    returned = await replays.start(request, handler=handler)
    recorded = await replays.progress("done")
    assert seen == list(range(12))
    assert returned.state is ReplayState.SUCCEEDED
    assert returned.finished_at is not None
    assert returned.finished_at == recorded.finished_at
    assert returned.updated_at == recorded.updated_at


async def test_a_replay_cancelled_before_its_run_returns_its_finish_time(store: EventStore) -> None:
    await _fill(store, 12)
    replays = Replays(store)
    delivered: list[int] = []

    async def handler(events: Sequence[RecordedEvent]) -> None:
        delivered.extend(event.offset for event in events)
        await replays.cancel("stopped")

    request = ReplayRequest(
        name="stopped", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, batch_size=5
    )
    returned = await replays.start(request, handler=handler)
    recorded = await replays.progress("stopped")
    assert returned.state is ReplayState.CANCELLED
    assert returned.finished_at is not None
    assert returned.finished_at == recorded.finished_at
