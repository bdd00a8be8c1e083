"""Consumer-group endpoints: list, describe, reset (refused while active unless forced), delete, and the
seed framework's subscription reset-offset path."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from sluice import ConsumerGroupOptions, EventData, EventStore, OffsetCommitStrategy, StreamConfig
from tests.rest.conftest import AUTHORIZATION

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


async def group_with_lag(store: EventStore, stream: str = "orders", group: str = "email") -> None:
    await store.create_stream(StreamConfig(name=stream))
    await store.append(stream, [EventData("E", {"n": n}) for n in range(6)])
    async with store.consumer_groups().consume(stream, group_id=group, consumer_id="w", options=FAST) as events:
        async for _event in events:
            break


async def test_list_and_describe(client: httpx.AsyncClient, store: EventStore) -> None:
    await group_with_lag(store)
    listed = await client.get("/api/event-streams/orders/groups", headers=AUTHORIZATION)
    assert listed.status_code == 200, listed.text
    assert [(group["group_id"], group["lag_events"]) for group in listed.json()["groups"]] == [("email", 5)]
    described = await client.get("/api/event-streams/orders/groups/email", headers=AUTHORIZATION)
    assert described.status_code == 200
    [partition] = described.json()["partitions"]
    assert (partition["committed_offset"], partition["head"], partition["lag_events"]) == (1, 6, 5)
    missing = await client.get("/api/event-streams/orders/groups/nobody", headers=AUTHORIZATION)
    assert missing.status_code == 404
    assert missing.json()["code"] == "group_not_found"


async def test_reset_to_each_target(client: httpx.AsyncClient, store: EventStore) -> None:
    await group_with_lag(store)
    url = "/api/event-streams/orders/groups/email/reset-offset"
    latest = await client.post(url, json={"to": "latest"}, headers=AUTHORIZATION)
    assert latest.status_code == 200, latest.text
    assert latest.json()["lag_events"] == 0
    at_offset = await client.post(url, json={"to": "offset", "offset": 4}, headers=AUTHORIZATION)
    assert at_offset.json()["partitions"][0]["committed_offset"] == 4
    at_time = await client.post(url, json={"to": "time", "time": "2000-01-01T00:00:00Z"}, headers=AUTHORIZATION)
    assert at_time.json()["partitions"][0]["committed_offset"] == 0
    earliest = await client.post(url, json={"to": "earliest"}, headers=AUTHORIZATION)
    assert earliest.json()["lag_events"] == 6
    incomplete = await client.post(url, json={"to": "offset"}, headers=AUTHORIZATION)
    assert incomplete.status_code == 400
    assert "needs an offset" in incomplete.json()["detail"]
    naive_time = await client.post(url, json={"to": "time", "time": "2000-01-01T00:00:00"}, headers=AUTHORIZATION)
    assert naive_time.status_code == 422


async def test_active_groups_need_force_to_reset_or_delete(client: httpx.AsyncClient, store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [EventData("E", {"n": n}) for n in range(3)])
    consumption = store.consumer_groups().consume(
        "orders",
        group_id="email",
        consumer_id="w",
        options=ConsumerGroupOptions(
            commit_strategy=OffsetCommitStrategy.MANUAL, heartbeat_interval=timedelta(seconds=10), batch_size=10
        ),
    )
    iterator = aiter(consumption)
    await asyncio.wait_for(anext(iterator), 10)
    try:
        url = "/api/event-streams/orders/groups/email"
        refused = await client.post(url + "/reset-offset", json={"to": "latest"}, headers=AUTHORIZATION)
        assert refused.status_code == 409
        assert refused.json()["code"] == "group_active"
        refused_delete = await client.delete(url, headers=AUTHORIZATION)
        assert refused_delete.status_code == 409
        forced = await client.post(url + "/reset-offset", json={"to": "latest", "force": True}, headers=AUTHORIZATION)
        assert forced.status_code == 200
        assert forced.json()["partitions"][0]["committed_offset"] == 3
        deleted = await client.delete(url, params={"force": "true"}, headers=AUTHORIZATION)
        assert deleted.status_code == 204
    finally:
        await consumption.aclose(processed=False)
    async with store.consumer_groups().consume("orders", group_id="email", consumer_id="w2", options=FAST) as events:
        async for _event in events:
            break  # the group exists again, with no active member
    assert (await client.delete(url, headers=AUTHORIZATION)).status_code == 204
    assert (await client.get(url, headers=AUTHORIZATION)).status_code == 404


async def test_the_subscription_path_finds_the_group_by_id(client: httpx.AsyncClient, store: EventStore) -> None:
    await group_with_lag(store)
    url = "/api/event-streams/subscriptions/email/consumers/worker-1/reset-offset"
    answer = await client.post(url, json={"to": "latest"}, headers=AUTHORIZATION)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["stream_name"], answer.json()["lag_events"]) == ("orders", 0)
    unknown = await client.post(
        "/api/event-streams/subscriptions/nobody/consumers/worker-1/reset-offset",
        json={"to": "latest"},
        headers=AUTHORIZATION,
    )
    assert unknown.status_code == 404
    await group_with_lag(store, stream="payments")
    ambiguous = await client.post(url, json={"to": "earliest"}, headers=AUTHORIZATION)
    assert ambiguous.status_code == 400
    assert "several streams" in ambiguous.json()["detail"]
    named = await client.post(url, json={"to": "earliest", "stream": "payments"}, headers=AUTHORIZATION)
    assert named.status_code == 200
    assert (named.json()["stream_name"], named.json()["lag_events"]) == ("payments", 6)
