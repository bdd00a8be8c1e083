"""REST answers every bad input with a 4xx problem+json and every fault with a problem+json that leaks
nothing: bodies over the limit are refused while they stream in (413), numbers past PostgreSQL's bigint are
validation errors (422), unexpected exceptions are a generic 500, an unreachable database a generic 503."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from sluice import EventStore, StreamConfig, StreamType
from sluice.core.errors import ConflictError, DatabaseBusyError, FailedPreconditionError, SluiceError
from sluice.rest import create_app
from sluice.security import BearerTokens
from tests.rest.conftest import AUTHORIZATION, TOKEN

PROBLEM = "application/problem+json"
SMALL_LIMIT = 4096
CHUNK = b"x" * 1024
BEYOND_BIGINT = 2**63


class CountingBody:
    """A request body that records how much of it the server pulled."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total_bytes:
            self.pulled += len(CHUNK)
            yield CHUNK


def limited_app(store: EventStore) -> FastAPI:
    return create_app(
        store, tokens=BearerTokens({TOKEN: "ada"}), lag_refresh_interval=None, max_request_body_bytes=SMALL_LIMIT
    )


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test")


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, object] = answer.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


async def test_a_declared_length_over_the_limit_is_refused_before_reading(store: EventStore) -> None:
    body = CountingBody(total_bytes=10 * SMALL_LIMIT)
    async with asgi_client(limited_app(store)) as client:
        answer = await client.post(
            "/api/event-streams/orders/events",
            content=body,
            headers={**AUTHORIZATION, "Content-Length": str(body.total_bytes), "Content-Type": "application/json"},
        )
    problem = assert_problem(answer, 413, "payload_too_large")
    assert str(SMALL_LIMIT) in str(problem["detail"])
    assert body.pulled == 0


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    body = CountingBody(total_bytes=1000 * SMALL_LIMIT)
    async with asgi_client(limited_app(store)) as client:
        answer = await client.post(
            "/api/event-streams/orders/events",
            content=body,
            headers={**AUTHORIZATION, "Content-Type": "application/json"},
        )
    assert_problem(answer, 413, "payload_too_large")
    assert body.pulled <= SMALL_LIMIT + 2 * len(CHUNK)
    assert [event async for event in store.read_stream("orders")] == []


async def test_bodies_under_the_limit_pass_and_the_default_limit_follows_the_payload_limit(
    store: EventStore,
) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    events = {"events": [{"type": "OrderPlaced", "data": {"note": "x" * 1000}}]}
    async with asgi_client(limited_app(store)) as client:
        assert (
            await client.post("/api/event-streams/orders/events", json=events, headers=AUTHORIZATION)
        ).status_code == 201
    default_limit = store.options.max_payload_bytes + 1024 * 1024
    async with asgi_client(create_app(store, lag_refresh_interval=None)) as client:
        just_over = await client.post(
            "/api/event-streams/orders/events",
            content=b" " * (default_limit + 1),
            headers={"Content-Type": "application/json"},
        )
        assert_problem(just_over, 413, "payload_too_large")
        at_limit = await client.post(
            "/api/event-streams/orders/events",
            content=b" " * (default_limit - 200) + b'{"events": [{"type": "T", "data": 1}]}',
            headers={"Content-Type": "application/json"},
        )
        assert at_limit.status_code == 201, at_limit.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/api/event-streams/orders/events",
            {"events": [{"type": "T", "data": 1}], "expectedOffset": BEYOND_BIGINT},
        ),
        (
            "POST",
            "/api/event-streams/orders/events",
            {"events": [{"type": "T", "data": 1}], "expectedOffset": 2**63 - 1},
        ),
        ("POST", "/api/event-streams/jobs/dead-letters/redrive", {"dead_letter_ids": [BEYOND_BIGINT]}),
        ("POST", "/api/event-streams/jobs/dead-letters/purge", {"dead_letter_ids": [1, BEYOND_BIGINT]}),
        ("POST", "/api/event-streams/orders/groups/email/dead-letters/redrive", {"dead_letter_ids": [BEYOND_BIGINT]}),
        ("GET", f"/api/event-streams/orders/groups/email/dead-letters/{BEYOND_BIGINT}", None),
        ("GET", f"/api/event-streams/orders/groups/email/dead-letters?after_id={BEYOND_BIGINT}", None),
        ("GET", "/api/event-streams/jobs/dead-letters?limit=100000", None),
        ("POST", "/api/stream-lifecycle/purge-deleted?older_than_seconds=1e300", None),
        ("POST", "/api/event-streams/orders/groups/email/reset-offset", {"to": "offset", "offset": BEYOND_BIGINT}),
    ],
    ids=[
        "expected-offset-2^63",
        "expected-offset-2^63-1",
        "queue-redrive-id-2^63",
        "queue-purge-id-2^63",
        "group-redrive-id-2^63",
        "group-dead-letter-id-2^63",
        "group-dead-letters-after-2^63",
        "limit-too-large",
        "purge-age-too-large",
        "reset-offset-2^63",
    ],
)
async def test_numbers_out_of_range_are_validation_problems(
    client: httpx.AsyncClient, store: EventStore, method: str, path: str, body: object
) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    answer = await client.request(method, path, json=body, headers=AUTHORIZATION)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert [event async for event in store.read_stream("orders")] == []


async def test_an_unexpected_exception_is_a_generic_500_problem_and_a_log_line(
    store: EventStore, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_arguments: object, **_options: object) -> None:
        raise KeyError("internal_client_error in asyncpg.protocol")

    monkeypatch.setattr(store, "list_streams", broken)
    with caplog.at_level(logging.ERROR, logger="sluice.rest.unexpected_errors"):
        answer = await client.get("/api/event-streams", headers=AUTHORIZATION)
    problem = assert_problem(answer, 500, "internal_error")
    assert "asyncpg" not in answer.text
    assert "KeyError" not in answer.text
    assert problem["instance"] == "/api/event-streams"
    assert any("KeyError" in (record.exc_text or "") for record in caplog.records)


async def test_an_unreachable_database_is_a_503_without_the_drivers_words(
    store: EventStore, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_arguments: object, **_options: object) -> None:
        raise ConnectionRefusedError("Connect call failed ('10.1.2.3', 5432)")

    monkeypatch.setattr(store, "list_streams", unreachable)
    answer = await client.get("/api/event-streams", headers=AUTHORIZATION)
    assert_problem(answer, 503, "database_unavailable")
    assert "10.1.2.3" not in answer.text
    assert answer.headers["retry-after"].isdigit()


class _NewConflictError(ConflictError):
    code = "new_conflict"


class _NewPreconditionError(FailedPreconditionError):
    code = "new_precondition"


@pytest.mark.parametrize(
    "case",
    [
        (DatabaseBusyError("canceling statement due to statement timeout"), 503, "canceling"),
        (_NewConflictError("clash"), 409, None),
        (_NewPreconditionError("not now"), 409, None),
        (SluiceError("outside every category"), 500, "outside"),
    ],
    ids=["database-busy", "new-conflict", "new-precondition", "uncategorised"],
)
async def test_errors_are_answered_by_their_category(
    store: EventStore,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[SluiceError, int, str | None],
) -> None:
    error, status, hidden = case

    async def failing(*_arguments: object, **_options: object) -> None:
        raise error

    monkeypatch.setattr(store, "list_streams", failing)
    answer = await client.get("/api/event-streams", headers=AUTHORIZATION)
    assert_problem(answer, status, error.code)
    if hidden is not None:
        assert hidden not in answer.text


async def test_deeply_nested_json_is_a_400_problem(client: httpx.AsyncClient, store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    depth = 100_000
    body = '{"events": [{"type": "T", "data": ' + "[" * depth + "]" * depth + "}]}"
    answer = await client.post(
        "/api/event-streams/orders/events",
        content=body,
        headers={**AUTHORIZATION, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == PROBLEM
    assert [event async for event in store.read_stream("orders")] == []
