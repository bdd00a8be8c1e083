"""The REST routes of a consumer group's dead letters, in process on both backends: list, inspect,
redrive (selected), purge, and problem answers for unknown streams, queues and ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sluice import ConsumedEvent, EventData, EventStore
from sluice.observability.metrics import SluiceMetrics
from sluice.rest import create_app
from tests.dead_letters.workers import ScriptedHandler, running_worker, wait_until, worker_settings

BASE = "/api/event-streams/orders/groups/billing/dead-letters"


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, metrics=SluiceMetrics(), lag_refresh_interval=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened


async def bury_two(store: EventStore, client: httpx.AsyncClient) -> list[dict[str, object]]:
    await store.append("orders", [EventData("OrderPlaced", {"n": n}) for n in range(4)], partition_key="k")

    def odd(event: ConsumedEvent) -> bool:
        return bool(event.data["n"] % 2)

    async with running_worker(store, worker_settings("orders", "billing"), ScriptedHandler(refuse=odd)):

        async def buried() -> bool:
            return len((await client.get(BASE)).json()["dead_letters"]) == 2

        await wait_until(buried)
    letters: list[dict[str, object]] = (await client.get(BASE)).json()["dead_letters"]
    return letters


async def test_list_inspect_redrive_and_purge(store: EventStore, client: httpx.AsyncClient) -> None:
    first, second = await bury_two(store, client)
    assert (first["data"], second["data"]) == ({"n": 1}, {"n": 3})
    assert first["attempts"] == 3
    assert first["stream"] == "orders"
    assert first["group"] == "billing"
    assert first["dead_letter_stream"] == "orders.billing.dead-letter"
    assert first["redrive_requested_at"] is None
    assert "RuntimeError: refusing" in str(first["error"])

    inspected = await client.get(f"{BASE}/{first['dead_letter_id']}")
    assert inspected.status_code == 200
    assert inspected.json() == first

    paged = await client.get(BASE, params={"after_id": first["dead_letter_id"], "limit": 5})
    assert [letter["dead_letter_id"] for letter in paged.json()["dead_letters"]] == [second["dead_letter_id"]]

    redriven = await client.post(f"{BASE}/redrive", json={"dead_letter_ids": [second["dead_letter_id"]]})
    assert redriven.status_code == 200
    assert redriven.json() == {"stream": "orders", "group": "billing", "dead_letter_ids": [second["dead_letter_id"]]}
    waiting = (await client.get(f"{BASE}/{second['dead_letter_id']}")).json()
    assert waiting["redrive_requested_at"] is not None
    assert waiting["redrives"] == 1

    purged = await client.post(f"{BASE}/purge", json={"dead_letter_ids": [first["dead_letter_id"]]})
    assert purged.json() == {"stream": "orders", "group": "billing", "purged": 1}
    gone = await client.get(f"{BASE}/{first['dead_letter_id']}")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["code"] == "dead_letter_not_found"

    purged_all = await client.post(f"{BASE}/purge", json={})
    assert purged_all.json()["purged"] == 1
    assert (await client.get(BASE)).json()["dead_letters"] == []


async def test_problems_for_unknown_streams_queues_and_bad_input(store: EventStore, client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/event-streams/nothing/groups/billing/dead-letters")
    assert missing.status_code == 404
    assert missing.json()["code"] == "stream_not_found"
    await store.enqueue("jobs", EventData("Job", {}))
    queue = await client.get("/api/event-streams/jobs/groups/billing/dead-letters")
    assert queue.status_code == 409
    assert queue.json()["code"] == "wrong_stream_type"
    await store.append("orders", [EventData("OrderPlaced", {"n": 1})])
    empty = await client.post(f"{BASE}/redrive", json={"dead_letter_ids": []})
    assert empty.status_code == 422
    unknown_field = await client.post(f"{BASE}/purge", json={"ids": [1]})
    assert unknown_field.status_code == 422
    bad_id = await client.get(f"{BASE}/0")
    assert bad_id.status_code == 422


async def test_reading_needs_read_and_redrive_or_purge_need_admin(store: EventStore) -> None:
    from sluice.security import AccessPolicy, BearerTokens  # noqa: PLC0415
    from sluice.security.policy import Grant  # noqa: PLC0415

    policy = AccessPolicy(
        [
            Grant.of(principals=["reader"], streams=["orders"], permissions=["read"]),
            Grant.of(principals=["operator"], streams=["*"], permissions=["admin"]),
        ]
    )
    tokens = BearerTokens({"reader-token": "reader", "operator-token": "operator", "stranger-token": "stranger"})
    app = create_app(store, tokens=tokens, policy=policy, metrics=SluiceMetrics(), lag_refresh_interval=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as client:
        operator = {"Authorization": "Bearer operator-token"}
        reader = {"Authorization": "Bearer reader-token"}
        stranger = {"Authorization": "Bearer stranger-token"}
        await store.append("orders", [EventData("OrderPlaced", {"n": 1})])

        def refuse_all(event: ConsumedEvent) -> bool:
            return True

        async with running_worker(store, worker_settings("orders", "billing"), ScriptedHandler(refuse=refuse_all)):

            async def buried() -> bool:
                return bool((await client.get(BASE, headers=operator)).json()["dead_letters"])

            await wait_until(buried)
        [letter] = (await client.get(BASE, headers=reader)).json()["dead_letters"]
        assert (await client.get(f"{BASE}/{letter['dead_letter_id']}", headers=reader)).status_code == 200
        assert (await client.get(BASE, headers=stranger)).status_code == 403
        for action in ("redrive", "purge"):
            denied = await client.post(f"{BASE}/{action}", json={}, headers=reader)
            assert denied.status_code == 403
            assert denied.json()["code"] == "permission_denied"
        unchanged = (await client.get(f"{BASE}/{letter['dead_letter_id']}", headers=reader)).json()
        assert unchanged["redrive_requested_at"] is None
        assert (await client.post(f"{BASE}/purge", json={}, headers=operator)).json()["purged"] == 1
