"""Authentication, problem+json shapes, correlation ids, probes and the metrics scrape."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig
from sluice.observability.logging import configure_logging
from sluice.observability.metrics import SluiceMetrics, record_appended
from sluice.rest import create_app
from tests.rest.conftest import AUTHORIZATION

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "instance"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic c2VjcmV0LXRva2Vu"}],
    ids=["missing", "unknown", "not-bearer"],
)
async def test_api_calls_need_a_valid_bearer_token(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    answer = await client.get("/api/event-streams", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    body = answer.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert (body["code"], body["status"], body["instance"]) == ("unauthenticated", 401, "/api/event-streams")
    assert body["type"] == "urn:sluice:problem:unauthenticated"
    assert "secret-token" not in answer.text


async def test_without_tokens_the_api_is_open(store: EventStore) -> None:
    app = create_app(store, lag_refresh_interval=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as client:
        assert (await client.get("/api/event-streams")).status_code == 200


async def test_probes_and_metrics_are_open(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert (await client.get("/metrics")).status_code == 200


async def test_validation_errors_are_problems_naming_each_field(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/event-streams", json={"name": "bad name!", "partitions": 0}, headers=AUTHORIZATION)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "validation_error"
    assert sorted(entry["location"][-1] for entry in body["errors"]) == ["name", "partitions"]
    bad_path = await client.get("/api/event-streams/-leading-dash", headers=AUTHORIZATION)
    assert bad_path.status_code == 422


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    nowhere = await client.get("/nowhere")
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "not_found")
    wrong_method = await client.put("/api/event-streams", headers=AUTHORIZATION)
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")


async def test_the_correlation_id_is_echoed_logged_and_generated(client: httpx.AsyncClient, store: EventStore) -> None:
    output = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", stream=output)
    try:
        answer = await client.post(
            "/api/event-streams",
            json={"name": "orders"},
            headers={**AUTHORIZATION, "X-Correlation-ID": "request-42"},
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert answer.headers["x-correlation-id"] == "request-42"
    [record] = [json.loads(line) for line in output.getvalue().splitlines() if "stream created" in line]
    assert (record["correlation_id"], record["stream"], record["principal"]) == ("request-42", "orders", "ada")
    generated = await client.get("/health/live", headers={"X-Correlation-ID": "has spaces"})
    assert generated.headers["x-correlation-id"] not in {"", "has spaces"}
    assert len(generated.headers["x-correlation-id"]) == 36  # a fresh UUID


async def test_metrics_are_scraped_and_parsed(
    client: httpx.AsyncClient, store: EventStore, metrics: SluiceMetrics
) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    record_appended("orders", 4, 0.002, metrics=metrics)
    answer = await client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    assert {"sluice_events_appended", "sluice_append_duration_seconds", "sluice_consumer_lag_events"} <= families.keys()
    [appended] = [sample for sample in families["sluice_events_appended"].samples if sample.name.endswith("_total")]
    assert (appended.labels, appended.value) == ({"stream": "orders"}, 4)


async def test_the_lifespan_runs_the_lag_refresher(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [EventData("E", {"n": n}) for n in range(3)])
    options = ConsumerGroupOptions(session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200))
    async with store.consumer_groups().consume("orders", group_id="email", consumer_id="w", options=options) as events:
        async for _event in events:
            break
    metrics = SluiceMetrics()
    app: FastAPI = create_app(store, metrics=metrics, lag_refresh_interval=timedelta(milliseconds=50))

    def lag() -> float | None:
        for family in text_string_to_metric_families(metrics.render().decode()):
            for sample in family.samples:
                if sample.name == "sluice_consumer_lag_events" and sample.labels == {
                    "stream": "orders",
                    "group": "email",
                }:
                    return sample.value
        return None

    assert lag() is None
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if lag() is not None:
                break
            await asyncio.sleep(0.02)
    assert lag() == 2  # and the refresher stopped with the app (the autouse fixture checks for tasks)
