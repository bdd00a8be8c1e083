"""Inspecting sagas: ``GET /api/sagas`` and ``/api/sagas/{id}`` (both backends) and
``sluice sagas list|show`` (a real subprocess on PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from sluice import EventStore
from sluice.rest import create_app
from sluice.security import AccessPolicy, BearerTokens, Grant
from sluice.services.sagas import SagaEngine, SagaRepository, saga_id_for
from tests.cli.conftest import run_cli
from tests.sagas.test_engine import Recorder, make_saga, place_order

TOKEN = "saga-token"
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}


async def _run_two_sagas(store: EventStore) -> tuple[uuid.UUID, uuid.UUID]:
    recorder = Recorder()
    recorder.failures["ship"] = 1
    engine = SagaEngine(make_saga(recorder), store)
    for order_id in ("bad", "good"):  # the first to ship fails once
        started = await engine.start(await place_order(store, order_id))
        assert started is not None
        await engine.advance(started.saga_id)
    return saga_id_for("fulfilment", "good"), saga_id_for("fulfilment", "bad")


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, tokens=BearerTokens({TOKEN: "ada"}), lag_refresh_interval=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as opened:
        yield opened


async def test_rest_lists_and_shows_sagas(
    store: EventStore, repository: SagaRepository, client: httpx.AsyncClient
) -> None:
    good, bad = await _run_two_sagas(store)
    listed = await client.get("/api/sagas", headers=AUTHORIZATION)
    assert listed.status_code == 200, listed.text
    statuses = {entry["correlation_id"]: entry["status"] for entry in listed.json()["sagas"]}
    assert statuses == {"good": "completed", "bad": "compensated"}

    only = await client.get("/api/sagas", params={"status": "compensated", "saga": "fulfilment"}, headers=AUTHORIZATION)
    assert [entry["saga_id"] for entry in only.json()["sagas"]] == [str(bad)]
    assert (await client.get("/api/sagas", params={"saga": "other"}, headers=AUTHORIZATION)).json() == {"sagas": []}

    shown = await client.get(f"/api/sagas/{bad}", headers=AUTHORIZATION)
    assert shown.status_code == 200, shown.text
    detail = shown.json()
    assert detail["status"] == "compensated"
    assert "ship" in detail["failure"]
    history = [(entry["kind"], entry["step"]) for entry in detail["history"]]
    assert history == [(entry.kind, entry.step) for entry in (await repository.get(bad)).history]
    assert history[-1] == ("saga_compensated", None)

    missing = await client.get(f"/api/sagas/{uuid.uuid4()}", headers=AUTHORIZATION)
    assert missing.status_code == 404
    assert missing.json()["code"] == "saga_not_found"
    assert (await client.get("/api/sagas/not-a-uuid", headers=AUTHORIZATION)).status_code == 422
    assert (await client.get(f"/api/sagas/{good}")).status_code == 401
    assert (await client.get("/api/sagas", params={"limit": 0}, headers=AUTHORIZATION)).status_code == 422


@pytest.mark.postgres
async def test_cli_lists_and_shows_sagas(postgres_dsn: str) -> None:
    import sluice  # noqa: PLC0415

    async with await sluice.connect(postgres_dsn) as store:
        good, bad = await _run_two_sagas(store)

    listed = run_cli("sagas", "list", "-o", "json", dsn=postgres_dsn)
    assert listed.returncode == 0, listed.stderr
    assert {entry["saga_id"]: entry["status"] for entry in json.loads(listed.stdout)} == {
        str(good): "completed",
        str(bad): "compensated",
    }
    table = run_cli("sagas", "list", "--status", "completed", dsn=postgres_dsn)
    assert table.returncode == 0, table.stderr
    assert str(good) in table.stdout
    assert str(bad) not in table.stdout

    shown = run_cli("sagas", "show", "bad", "--saga", "fulfilment", "-o", "json", dsn=postgres_dsn)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["saga_id"] == str(bad)
    assert document["history"][-1]["kind"] == "saga_compensated"
    text = run_cli("sagas", "show", str(good), dsn=postgres_dsn)
    assert text.returncode == 0, text.stderr
    assert "saga_completed" in text.stdout

    missing = run_cli("sagas", "show", str(uuid.uuid4()), dsn=postgres_dsn)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
    malformed = run_cli("sagas", "show", "not-a-uuid", dsn=postgres_dsn)
    assert malformed.returncode == 2  # invalid input
    assert "not a saga id" in malformed.stderr


async def test_rest_shows_sagas_only_to_principals_that_may_read_them(store: EventStore) -> None:
    good, bad = await _run_two_sagas(store)
    policy = AccessPolicy(
        [
            Grant.of(principals=["ops"], streams=["saga.fulfilment"], permissions=["read"]),
            Grant.of(principals=["returns"], streams=["saga.returns", "orders"], permissions=["read"]),
        ]
    )
    app = create_app(
        store, tokens=BearerTokens({"ops-token": "ops", "returns-token": "returns"}), policy=policy,
        lag_refresh_interval=None,
    )  # fmt: skip
    as_ops, as_returns = {"Authorization": "Bearer ops-token"}, {"Authorization": "Bearer returns-token"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as client:
        listed = await client.get("/api/sagas", headers=as_ops)
        assert sorted(entry["saga_id"] for entry in listed.json()["sagas"]) == sorted([str(good), str(bad)])
        assert (await client.get("/api/sagas", headers=as_returns)).json() == {"sagas": []}  # left out, not refused
        assert (await client.get(f"/api/sagas/{bad}", headers=as_ops)).status_code == 200
        denied = await client.get(f"/api/sagas/{bad}", headers=as_returns)
        assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
        assert (await client.get(f"/api/sagas/{uuid.uuid4()}", headers=as_returns)).status_code == 404
