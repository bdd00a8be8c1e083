"""The REST routes of replays: progress as the operator reads it, cancellation, problem answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from sluice import EventData, EventStore, StreamConfig
from sluice.events import RecordedEvent
from sluice.replay import ReplayRequest, Replays, ReplayState, ReplayTargetKind
from sluice.rest import create_app
from sluice.security import BearerTokens

TOKEN = "replay-token"
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, tokens=BearerTokens({TOKEN: "ada"}), lag_refresh_interval=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened


async def test_progress_and_cancel_over_rest(store: EventStore, client: httpx.AsyncClient) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    for partition in (0, 1):
        await store.append("orders", [EventData("Numbered", {"n": n}) for n in range(10)], partition=partition)

    async def failing(events: Sequence[RecordedEvent]) -> None:
        if events[0].offset >= 4:
            raise RuntimeError("stop here")

    request = ReplayRequest(
        name="orders-1", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, batch_size=4
    )
    with pytest.raises(Exception, match="stop here"):
        await Replays(store).start(request, handler=failing)

    answer = await client.get("/api/replays/orders-1", headers=AUTHORIZATION)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["state"], body["events_done"], body["events_total"], body["percent"]) == ("failed", 8, 20, 40)
    assert body["stream"] == "orders"
    assert body["target"] == "handler"
    assert "stop here" in body["error"]
    assert [(p["partition"], p["next_offset"], p["end_offset"]) for p in body["partitions"]] == [(0, 4, 10), (1, 4, 10)]

    cancelled = await client.post("/api/replays/orders-1/cancel", headers=AUTHORIZATION)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["state"], cancelled.json()["cancel_requested"]) == ("cancelled", True)
    assert (await Replays(store).progress("orders-1")).state is ReplayState.CANCELLED

    missing = await client.get("/api/replays/nothing", headers=AUTHORIZATION)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "replay_not_found"
    missing_cancel = await client.post("/api/replays/nothing/cancel", headers=AUTHORIZATION)
    assert (missing_cancel.status_code, missing_cancel.json()["code"]) == (404, "replay_not_found")
    assert (await client.get("/api/replays/orders-1")).status_code == 401
    assert (await client.get("/api/replays/not%20a%20name", headers=AUTHORIZATION)).status_code == 422
