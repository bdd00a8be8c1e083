"""The REST append route with group commit (what ``sluice serve`` runs, sharing the gRPC server's batcher):
concurrent requests share transactions and each gets its own offsets; the policy is checked before an
append joins a batch; a bad event fails its own request only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from sluice import EventStore
from sluice.rest import create_app
from sluice.security import BearerTokens, parse_policy
from sluice.services.group_commit import AppendBatcher
from tests.group_commit.helpers import batch_sizes, private_metrics, read

POLICY = parse_policy(
    """
grants:
  - principals: [writer]
    streams: ["orders"]
    permissions: [write, read]
  - principals: [reader]
    streams: ["*"]
    permissions: [read]
"""
)
TOKENS = BearerTokens({"writer-token": "writer", "reader-token": "reader"})


def bearer(principal: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {principal}-token"}


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    batcher = AppendBatcher(store, linger=timedelta(milliseconds=20), metrics=private_metrics())
    app = create_app(store, tokens=TOKENS, policy=POLICY, lag_refresh_interval=None, batcher=batcher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened
    await batcher.close()


def _append(client: httpx.AsyncClient, principal: str, data: object, stream: str = "orders") -> object:
    body = {"events": [{"type": "OrderPlaced", "data": data}]}
    return client.post(f"/api/event-streams/{stream}/events", json=body, headers=bearer(principal))


async def test_concurrent_requests_share_transactions_and_each_gets_its_offsets(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    answers = await asyncio.gather(*(_append(client, "writer", {"n": n}) for n in range(30)))  # type: ignore[misc]
    assert [answer.status_code for answer in answers] == [201] * 30
    offsets = sorted(answer.json()["offsets"][0] for answer in answers)
    assert offsets == list(range(30))
    stored = await read(store, "orders")
    assert sorted(event.data["n"] for event in stored) == list(range(30))
    assert len(batch_sizes(stored)) < 30, f"requests shared transactions: {batch_sizes(stored)}"
    # Every request had a correlation id of its own (the door makes one): each event keeps its request's.
    by_number = {event.data["n"]: event for event in stored}
    for number, answer in enumerate(answers):
        event = by_number[number]
        assert event.correlation_id == answer.headers["x-correlation-id"]
        assert event.metadata["correlation_id"] == event.correlation_id
    assert len({event.correlation_id for event in stored}) == 30


async def test_the_policy_is_checked_before_an_append_joins_a_batch(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    answers = await asyncio.gather(
        _append(client, "writer", {"n": 1}),  # type: ignore[misc]
        _append(client, "reader", {"n": 2}),
        _append(client, "writer", {"n": 3}, stream="payments"),
    )
    assert [answer.status_code for answer in answers] == [201, 403, 403]
    assert [event.data for event in await read(store, "orders")] == [{"n": 1}]


async def test_a_bad_event_fails_its_own_request_only(client: httpx.AsyncClient, store: EventStore) -> None:
    oversized = {"blob": "x" * (store.options.max_payload_bytes + 10)}
    answers = await asyncio.gather(
        *(_append(client, "writer", {"n": n}) for n in range(5)),  # type: ignore[misc]
        _append(client, "writer", oversized),
    )
    assert [answer.status_code for answer in answers] == [201] * 5 + [413]
    assert len(await read(store, "orders")) == 5
