"""One table of bad inputs through all four doors (issue 16, "what to build"): the library raises a
typed InvalidArgumentError, the CLI exits 2 with a one-line message and no traceback, REST answers a
4xx problem+json, gRPC ends the call with INVALID_ARGUMENT; and the store is exactly as it was."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import httpx
import pytest
from click.testing import CliRunner

import sluice
from sluice import InvalidArgumentError
from sluice.cli import main
from sluice.observability.metrics import SluiceMetrics
from sluice.rest import create_app
from sluice.rpc.server import build_grpc_server
from sluice.security import BearerTokens
from tests.bad_input.cases import NESTED_TEXT, BadInput, cases_for
from tests.bad_input.conftest import take_snapshot

pytestmark = pytest.mark.postgres

TOKEN = "bad-input-token"
LEAKED_INTERNALS = ("Traceback", "asyncpg", "pydantic", "OverflowError", "RecursionError", "KeyError")


def _ids(case: BadInput) -> str:
    return case.name


@pytest.mark.parametrize("case", cases_for("library"), ids=_ids)
async def test_library(seeded_dsn: str, case: BadInput) -> None:
    before = await take_snapshot(seeded_dsn)
    assert case.library is not None
    async with await sluice.connect(seeded_dsn) as store:
        with pytest.raises(InvalidArgumentError):
            await case.library(store)
    assert await take_snapshot(seeded_dsn) == before


@pytest.mark.parametrize("case", cases_for("cli"), ids=_ids)
async def test_cli(seeded_dsn: str, case: BadInput) -> None:
    before = await take_snapshot(seeded_dsn)
    assert case.cli is not None
    arguments, stdin = case.cli
    result = await asyncio.to_thread(
        CliRunner().invoke, main, arguments, input=stdin, env={"SLUICE_DSN": seeded_dsn, "SLUICE_OUTPUT": "json"}
    )
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, output
    for leaked in LEAKED_INTERNALS:
        assert leaked not in output, output
    assert await take_snapshot(seeded_dsn) == before


@pytest.fixture
async def rest_client(seeded_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with await sluice.connect(seeded_dsn) as store:
        app = create_app(store, tokens=BearerTokens({TOKEN: "ada"}), metrics=SluiceMetrics(), lag_refresh_interval=None)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sluice.test", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            yield client


@pytest.mark.parametrize("case", cases_for("rest"), ids=_ids)
async def test_rest(seeded_dsn: str, rest_client: httpx.AsyncClient, case: BadInput) -> None:
    before = await take_snapshot(seeded_dsn)
    assert case.rest is not None
    method, path, body = case.rest
    content = None if body is None else json.dumps(body).replace('"NESTED"', NESTED_TEXT).replace('"NAN"', "NaN")
    answer = await rest_client.request(
        method, path, content=content, headers={"Content-Type": "application/json"} if content else {}
    )
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    problem = answer.json()
    assert problem["status"] == answer.status_code
    assert problem["code"]
    for leaked in LEAKED_INTERNALS:
        assert leaked not in problem["detail"], problem
    assert await take_snapshot(seeded_dsn) == before


@pytest.fixture
async def grpc_channel(seeded_dsn: str) -> AsyncIterator[grpc.aio.Channel]:
    async with await sluice.connect(seeded_dsn, poll_interval=timedelta(milliseconds=50)) as store:
        server = build_grpc_server(store, address="127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                yield channel
        finally:
            await server.stop(grace_seconds=1)


@pytest.mark.parametrize("case", cases_for("grpc"), ids=_ids)
async def test_grpc(seeded_dsn: str, grpc_channel: grpc.aio.Channel, case: BadInput) -> None:
    before = await take_snapshot(seeded_dsn)
    assert case.grpc is not None
    refusal = await case.grpc(grpc_channel)
    assert refusal.status == grpc.StatusCode.INVALID_ARGUMENT, refusal
    for leaked in LEAKED_INTERNALS:
        assert leaked not in refusal.message, refusal
    assert await take_snapshot(seeded_dsn) == before
