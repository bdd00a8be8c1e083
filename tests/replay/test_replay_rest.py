"""The REST routes of replays: progress as the operator reads it, cancellation, problem answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from sluice import EventData, EventStore, StreamConfig
from sluice.core.events import RecordedEvent
from sluice.rest import create_app
from sluice.security import AccessPolicy, BearerTokens, Grant
from sluice.services.replay import ReplayRequest, Replays, ReplayState, ReplayTargetKind

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


async def test_replays_over_rest_follow_the_access_policy_of_their_source_stream(store: EventStore) -> None:
    await store.append("orders", [EventData("Numbered", {"n": n}) for n in range(3)])
    request = ReplayRequest(name="orders-2", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER)

    async def failing(events: Sequence[RecordedEvent]) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(Exception, match="stop here"):
        await Replays(store).start(request, handler=failing)
    policy = AccessPolicy(
        [
            Grant.of(principals=["reader"], streams=["orders"], permissions=["read"]),
            Grant.of(principals=["operator"], streams=["orders"], permissions=["admin"]),
        ]
    )
    tokens = BearerTokens({"reader-token": "reader", "operator-token": "operator", "other-token": "other"})
    app = create_app(store, tokens=tokens, policy=policy, lag_refresh_interval=None)
    as_reader, as_operator, as_other = (
        {"Authorization": f"Bearer {principal}-token"} for principal in ("reader", "operator", "other")
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as client:
        assert (await client.get("/api/replays/orders-2", headers=as_reader)).status_code == 200
        denied = await client.get("/api/replays/orders-2", headers=as_other)
        assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
        assert (await client.get("/api/replays/nothing", headers=as_other)).status_code == 404  # read before checked
        assert (await client.post("/api/replays/orders-2/cancel", headers=as_reader)).status_code == 403
        assert (await Replays(store).progress("orders-2")).state is ReplayState.FAILED  # the refusal changed nothing
        cancelled = await client.post("/api/replays/orders-2/cancel", headers=as_operator)
        assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
