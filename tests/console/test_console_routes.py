"""The console's routes in process (httpx over ASGI, the memory store): sign-in and its cookie, what a
read-only caller sees and may not do, CSRF checks on every form, and clear error pages for bad input."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig, StreamType
from sluice.rest import create_app
from sluice.security import AccessPolicy, BearerTokens, Grant

ADMIN_TOKEN = "admin-token"
READER_TOKEN = "reader-token"
FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


@pytest.fixture
async def store() -> AsyncIterator[EventStore]:
    opened = await sluice.connect("memory://", poll_interval=timedelta(milliseconds=50))
    await opened.create_stream(StreamConfig(name="orders", partitions=2))
    for number in range(30):
        await opened.append(
            "orders", EventData("OrderPlaced", {"n": number}), partition=number % 2, correlation_id=f"c{number % 3}"
        )
    await opened.create_stream(StreamConfig(name="secret-payroll"))
    await opened.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1))
    await opened.enqueue("jobs", EventData("Job", {"id": 1}))
    message = await opened.dequeue("jobs")
    assert message is not None
    await opened.nack("jobs", message.receipt, reason="boom: the printer is on fire")
    async with opened.consumer_groups().consume("orders", group_id="email", consumer_id="w", options=FAST) as events:
        async for _event in events:
            break
    yield opened
    await opened.close()


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    policy = AccessPolicy(
        [
            Grant.of(principals=["ops"], streams=["*"], permissions=["admin"]),
            Grant.of(principals=["viewer"], streams=["orders", "jobs"], permissions=["read"]),
        ]
    )
    app = create_app(
        store,
        tokens=BearerTokens({ADMIN_TOKEN: "ops", READER_TOKEN: "viewer"}),
        policy=policy,
        lag_refresh_interval=None,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened


def signed_in(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    client.cookies.set("sluice_console_token", token, domain="sluice.test", path="/console")
    return client


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_sign_in_sets_an_http_only_cookie_and_the_token_never_reaches_a_url(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/console/")
    assert anonymous.status_code == 401
    assert 'name="token"' in anonymous.text
    refused = await client.post("/console/login", data={"token": "wrong", "next": "/console/"})
    assert refused.status_code == 401
    assert "login-error" in refused.text
    accepted = await client.post("/console/login", data={"token": ADMIN_TOKEN, "next": "https://evil.test/x"})
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/console/"  # never another site
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert ADMIN_TOKEN not in accepted.headers["location"]
    streams = await client.get("/console/")
    assert streams.status_code == 200
    assert ADMIN_TOKEN not in streams.text


async def test_the_authorization_header_works_too(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/streams/orders", headers={"Authorization": f"Bearer {READER_TOKEN}"})
    assert page.status_code == 200
    assert "OrderPlaced" in page.text


async def test_a_reader_sees_only_its_streams_and_no_admin_action(client: httpx.AsyncClient) -> None:
    signed_in(client, READER_TOKEN)
    streams = await client.get("/console/")
    assert 'data-stream="orders"' in streams.text
    assert 'data-stream="jobs"' in streams.text
    assert "secret-payroll" not in streams.text
    forbidden = await client.get("/console/streams/secret-payroll")
    assert forbidden.status_code == 403
    assert (await client.get("/console/streams/secret-payroll/tail")).status_code == 403
    assert (await client.get("/console/streams/secret-payroll/groups/email/live")).status_code in {403, 404}
    group = await client.get("/console/streams/orders/groups/email")
    assert group.status_code == 200
    assert "reset-form" not in group.text
    queue = await client.get("/console/queues/jobs")
    assert "printer is on fire" in queue.text
    assert 'id="redrive"' not in queue.text
    assert 'id="purge"' not in queue.text
    csrf = await csrf_of(client, "/console/queues/jobs")
    redrive = await client.post("/console/queues/jobs/dead-letters/redrive", data={"csrf_token": csrf})
    assert redrive.status_code == 403
    reset = await client.post(
        "/console/streams/orders/groups/email/reset-offset", data={"csrf_token": csrf, "to": "latest", "confirm": "yes"}
    )
    assert reset.status_code == 403


async def test_an_admin_redrives_with_a_csrf_token_and_only_with_one(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    signed_in(client, ADMIN_TOKEN)
    queue = await client.get("/console/queues/jobs")
    assert 'id="redrive"' in queue.text
    without = await client.post("/console/queues/jobs/dead-letters/redrive", data={"dead_letter_id": "1"})
    assert without.status_code == 403
    assert "csrf_check_failed" in without.text
    wrong = await client.post("/console/queues/jobs/dead-letters/redrive", data={"csrf_token": "0" * 64})
    assert wrong.status_code == 403
    csrf = await csrf_of(client, "/console/queues/jobs")
    other_site = await client.post(
        "/console/queues/jobs/dead-letters/redrive",
        data={"csrf_token": csrf},
        headers={"Origin": "https://evil.test"},
    )
    assert other_site.status_code == 403
    assert len(await store.dead_letters("jobs")) == 1
    redriven = await client.post("/console/queues/jobs/dead-letters/redrive", data={"csrf_token": csrf})
    assert redriven.status_code == 303, redriven.text
    assert await store.dead_letters("jobs") == []
    assert (await store.queue_depth("jobs")).waiting == 1


async def test_a_reset_asks_for_confirmation_first(client: httpx.AsyncClient, store: EventStore) -> None:
    signed_in(client, ADMIN_TOKEN)
    csrf = await csrf_of(client, "/console/streams/orders/groups/email")
    url = "/console/streams/orders/groups/email/reset-offset"
    asked = await client.post(url, data={"csrf_token": csrf, "to": "latest", "force": "on"})
    assert asked.status_code == 200
    assert "confirm-reset" in asked.text
    assert (await store.consumer_groups().describe("orders", "email")).lag_events > 0
    done = await client.post(url, data={"csrf_token": csrf, "to": "latest", "force": "on", "confirm": "yes"})
    assert done.status_code == 303, done.text
    assert (await store.consumer_groups().describe("orders", "email")).lag_events == 0
    bad_target = await client.post(url, data={"csrf_token": csrf, "to": "yesterday"})
    assert bad_target.status_code == 400
    assert "earliest, latest, offset or time" in bad_target.text
    bad_time = await client.post(url, data={"csrf_token": csrf, "to": "time", "time": "soon"})
    assert bad_time.status_code == 400


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/console/streams/no-such-stream", 404, "does not exist"),
        ("/console/streams/orders/groups/nobody", 404, "does not exist"),
        ("/console/streams/orders?offset=99999999999999999999", 400, "offset: Input should be less than or equal"),
        ("/console/streams/orders?offset=400", 400, "offset 400 is past partition 0&#39;s head 15"),
        ("/console/streams/orders?partition=7", 400, "has partitions 0 to 1, not 7"),
        ("/console/streams/bad%20name", 400, "name"),
        ("/console/streams/orders?time=not-a-time", 400, "time"),
        ("/console/queues/orders", 409, "not a queue"),
        ("/console/nothing-here", 404, "Not Found"),
    ],
)
async def test_bad_input_gets_a_clear_error_page(
    client: httpx.AsyncClient, path: str, status: int, message: str
) -> None:
    signed_in(client, ADMIN_TOKEN)
    page = await client.get(path)
    assert page.status_code == status, page.text
    assert message in page.text
    assert page.headers["content-type"].startswith("text/html")


async def test_forms_must_be_url_encoded(client: httpx.AsyncClient) -> None:
    signed_in(client, ADMIN_TOKEN)
    sent = await client.post("/console/queues/jobs/dead-letters/purge", json={"csrf_token": "x"})
    assert sent.status_code == 400
    assert "x-www-form-urlencoded" in sent.text


async def test_browse_search_and_every_page_render(client: httpx.AsyncClient) -> None:
    signed_in(client, ADMIN_TOKEN)
    page = await client.get("/console/streams/orders?partition=1&offset=3")
    assert re.findall(r'class="event" data-offset="(\d+)"', page.text)[:2] == ["3", "4"]
    from_time = await client.get("/console/streams/orders", params={"partition": 0, "time": "2000-01-01T00:00:00Z"})
    assert re.findall(r'class="event" data-offset="(\d+)"', from_time.text)[0] == "0"
    future = await client.get("/console/streams/orders", params={"time": "2999-01-01T00:00:00Z"})
    assert "No events here." in future.text
    searched = await client.get("/console/streams/orders?correlation_id=c1")
    assert "10 event(s) with correlation id" in searched.text
    for path in ("/console/", "/console/operations", "/console/health", "/console/streams/orders/groups/email"):
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
    chart = await client.get("/console/streams/orders/groups/email/live")
    assert 'data-lag-events="' in chart.text
