"""The REST door: each request acts as its token's principal; denials are 403 problems with the
``permission_denied`` code, logged for audit, and change nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from sluice import EventData, EventStore, StreamConfig, StreamType
from sluice.rest import create_app
from sluice.security import AccessPolicy, BearerTokens
from sluice.security.authorizer import AUDIT_LOGGER_NAME
from tests.access_control.conftest import bearer


@pytest.fixture
async def client(store: EventStore, tokens: BearerTokens, policy: AccessPolicy) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, tokens=tokens, policy=policy, lag_refresh_interval=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened


async def test_writers_and_readers_cannot_administer_streams(
    client: httpx.AsyncClient, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    with caplog.at_level(logging.WARNING, logger=AUDIT_LOGGER_NAME):
        for principal in ("reader", "writer"):
            created = await client.post(
                "/api/event-streams",
                json={"name": "orders-eu", "partitions": 1},
                headers={**bearer(principal), "X-Correlation-Id": f"rest-{principal}"},
            )
            assert created.status_code == 403
            assert created.headers["content-type"] == "application/problem+json"
            assert created.json()["code"] == "permission_denied"
            assert f"'{principal}' may not admin 'orders-eu'" in created.json()["detail"]
            assert (await client.delete("/api/event-streams/orders", headers=bearer(principal))).status_code == 403
            patched = await client.patch("/api/event-streams/orders", json={"partitions": 3}, headers=bearer(principal))
            assert patched.status_code == 403
    assert [info.name for info in await store.list_streams()] == ["orders"]
    assert (await store.get_stream("orders")).partitions == 1
    denials = [(record.principal, record.action, record.stream) for record in caplog.records]  # type: ignore[attr-defined]
    assert ("writer", "create_stream", "orders-eu") in denials
    assert ("reader", "delete_stream", "orders") in denials
    correlation_ids = {record.correlation_id for record in caplog.records}  # type: ignore[attr-defined]
    assert {"rest-reader", "rest-writer"} <= correlation_ids

    operator = bearer("operator")
    created = await client.post("/api/event-streams", json={"name": "orders-eu", "partitions": 1}, headers=operator)
    assert created.status_code == 201
    assert (await client.delete("/api/event-streams/orders", headers=operator)).status_code == 204


async def test_reads_follow_the_policy_and_listings_are_filtered(client: httpx.AsyncClient, store: EventStore) -> None:
    for name in ("orders", "orders-eu", "payments"):
        await store.append(name, EventData("Happened", {}))
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    listed = await client.get("/api/event-streams", headers=bearer("writer"))
    assert [stream["name"] for stream in listed.json()["streams"]] == ["jobs", "orders", "orders-eu"]
    assert (await client.get("/api/event-streams/orders", headers=bearer("reader"))).status_code == 200
    assert (await client.get("/api/event-streams/payments", headers=bearer("writer"))).status_code == 403
    assert (await client.get("/api/event-streams/payments/health", headers=bearer("worker"))).status_code == 403
    assert (await client.get("/api/event-streams/payments/groups", headers=bearer("reader"))).status_code == 200
    redrive = await client.post("/api/event-streams/jobs/dead-letters/redrive", json={}, headers=bearer("writer"))
    assert redrive.status_code == 403
    purge = await client.post("/api/event-streams/jobs/dead-letters/purge", json={}, headers=bearer("operator"))
    assert purge.status_code == 200


async def test_without_a_policy_every_authenticated_caller_may_do_everything(
    store: EventStore, tokens: BearerTokens
) -> None:
    app = create_app(store, tokens=tokens, lag_refresh_interval=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as client:
        created = await client.post("/api/event-streams", json={"name": "orders"}, headers=bearer("reader"))
        assert created.status_code == 201
        assert (await client.get("/api/event-streams")).status_code == 401  # authentication still applies


async def test_a_token_without_write_permission_cannot_append_over_rest(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    body = {"events": [{"type": "OrderPlaced", "data": {"order_id": "o-1"}}], "partitionKey": "ada"}
    for principal in ("reader", "worker"):
        denied = await client.post("/api/event-streams/orders/events", json=body, headers=bearer(principal))
        assert denied.status_code == 403, principal
        assert denied.json()["code"] == "permission_denied"
    assert sum(partition.head for partition in (await store.get_stream("orders")).partition_heads) == 0

    event_id = "6f1c2a9e-0000-4000-8000-000000000001"
    body["events"][0]["id"] = event_id  # type: ignore[index]
    appended = await client.post("/api/event-streams/orders/events", json=body, headers=bearer("writer"))
    assert appended.status_code == 201
    answer = appended.json()
    assert (answer["stream"], answer["offsets"], answer["deduplicated"]) == ("orders", [0], False)
    again = await client.post("/api/event-streams/orders/events", json=body, headers=bearer("writer"))
    assert again.json()["deduplicated"] is True  # the same event id is stored once
    another = {"events": [{"type": "OrderPlaced", "data": {"order_id": "o-2"}}], "partitionKey": "ada"}
    stale = await client.post(
        "/api/event-streams/orders/events", json={**another, "expectedOffset": 5}, headers=bearer("writer")
    )
    assert stale.status_code == 409
    [stored] = [event async for event in store.read_stream("orders", partition=answer["partitions"][0])]
    assert (str(stored.event_id), stored.event_type, stored.data) == (event_id, "OrderPlaced", {"order_id": "o-1"})
