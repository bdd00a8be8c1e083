"""The stream endpoints: list, describe (heads, size, groups with lag), create, grow, delete, dead letters."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx

from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig, StreamType
from tests.rest.conftest import AUTHORIZATION

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


async def test_create_list_describe_grow_and_delete(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/event-streams", json={"name": "orders", "partitions": 2}, headers=AUTHORIZATION)
    assert created.status_code == 201, created.text
    assert created.json()["partitions"] == 2
    assert [head["head"] for head in created.json()["head_offsets"]] == [0, 0]
    listed = await client.get("/api/event-streams", headers=AUTHORIZATION)
    assert [stream["name"] for stream in listed.json()["streams"]] == ["orders"]
    grown = await client.patch("/api/event-streams/orders", json={"partitions": 4}, headers=AUTHORIZATION)
    assert grown.status_code == 200, grown.text
    assert grown.json()["partitions"] == 4
    assert len(grown.json()["head_offsets"]) == 4
    deleted = await client.delete("/api/event-streams/orders", headers=AUTHORIZATION)
    assert deleted.status_code == 204
    missing = await client.get("/api/event-streams/orders", headers=AUTHORIZATION)
    assert missing.status_code == 404
    assert missing.json()["code"] == "stream_not_found"


async def test_describe_shows_heads_size_and_groups_with_lag(client: httpx.AsyncClient, store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    for number in range(5):
        await store.append("orders", EventData("E", {"n": number}), partition=number % 2)
    async with store.consumer_groups().consume("orders", group_id="email", consumer_id="w", options=FAST) as events:
        async for _event in events:
            break
    answer = await client.get("/api/event-streams/orders", headers=AUTHORIZATION)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(head["partition"], head["head"]) for head in body["head_offsets"]] == [(0, 3), (1, 2)]
    assert body["approximate_event_count"] == 5
    [group] = body["consumer_groups"]
    assert group["group_id"] == "email"
    assert group["lag_events"] == 4
    assert group["lag_seconds"] > 0


async def test_shrinking_partitions_or_unknown_settings_are_refused(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    shrink = await client.patch("/api/event-streams/orders", json={"partitions": 1}, headers=AUTHORIZATION)
    assert shrink.status_code == 400
    assert shrink.json()["code"] == "invalid_argument"
    unknown = await client.patch("/api/event-streams/orders", json={"retention": "7d"}, headers=AUTHORIZATION)
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "validation_error"
    assert (await store.get_stream("orders")).partitions == 2  # nothing changed


async def test_creating_a_taken_name_with_another_type_is_a_conflict(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    again = await client.post("/api/event-streams", json={"name": "orders"}, headers=AUTHORIZATION)
    assert again.status_code == 201  # idempotent for the same configuration
    conflict = await client.post(
        "/api/event-streams", json={"name": "orders", "type": "ephemeral"}, headers=AUTHORIZATION
    )
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "stream_already_exists"


async def test_dead_letters_of_a_queue_are_listed_with_their_history(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1))
    await store.enqueue("jobs", EventData("Job", {"n": 1}), correlation_id="c-1")
    await store.enqueue("jobs", EventData("Blob", b"\x00\x01"))
    for _ in range(2):
        message = await store.dequeue("jobs")
        assert message is not None
        await store.nack("jobs", message.receipt, reason="handler failed")
    answer = await client.get("/api/event-streams/jobs/dead-letters", params={"limit": 10}, headers=AUTHORIZATION)
    assert answer.status_code == 200, answer.text
    json_letter, binary_letter = answer.json()["dead_letters"]
    assert json_letter["data"] == {"n": 1}
    assert json_letter["correlation_id"] == "c-1"
    assert [failure["reason"] for failure in json_letter["failures"]] == ["handler failed"]
    assert binary_letter["data"] is None
    assert base64.b64decode(binary_letter["data_base64"]) == b"\x00\x01"
    not_a_queue = await client.get("/api/event-streams/missing/dead-letters", headers=AUTHORIZATION)
    assert not_a_queue.status_code == 404


async def test_dead_letters_are_redriven_and_purged(client: httpx.AsyncClient, store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1))
    await store.enqueue_many("jobs", [EventData("Job", {"n": n}) for n in range(3)])
    for message in await store.dequeue_many("jobs", max_messages=3):
        await store.nack("jobs", message.receipt, reason="handler failed")
    first, second, third = [letter.dead_letter_id for letter in await store.dead_letters("jobs")]
    redriven = await client.post(
        "/api/event-streams/jobs/dead-letters/redrive", json={"dead_letter_ids": [first]}, headers=AUTHORIZATION
    )
    assert redriven.status_code == 200, redriven.text
    [message_id] = redriven.json()["message_ids"]
    again = await store.dequeue("jobs")
    assert again is not None
    assert (again.message_id, again.data) == (message_id, {"n": 0})
    purged = await client.post("/api/event-streams/jobs/dead-letters/purge", json={}, headers=AUTHORIZATION)
    assert purged.json() == {"queue_name": "jobs", "purged": 2}
    assert await store.dead_letters("jobs") == []
    refused = await client.post(
        "/api/event-streams/jobs/dead-letters/redrive", json={"dead_letter_ids": []}, headers=AUTHORIZATION
    )
    assert refused.status_code == 422
    assert second != third
    unauthorised = await client.post("/api/event-streams/jobs/dead-letters/purge", json={})
    assert unauthorised.status_code == 401


async def test_stream_health_is_served(client: httpx.AsyncClient, store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    answer = await client.get("/api/event-streams/orders/health", headers=AUTHORIZATION)
    assert answer.status_code == 200
    assert answer.json()["status"] == "healthy"
    assert answer.json()["reasons"] == []


async def test_a_stream_can_be_created_with_queue_delivery(client: httpx.AsyncClient, store: EventStore) -> None:
    created = await client.post(
        "/api/event-streams", json={"name": "tasks", "delivery": "queue"}, headers=AUTHORIZATION
    )
    assert created.status_code == 201, created.text
    assert created.json()["delivery"] == "queue"
    assert (await store.get_stream("tasks")).delivery.value == "queue"
