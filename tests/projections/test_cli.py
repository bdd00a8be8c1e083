"""``sluice project`` as the operator runs it: a real subprocess against PostgreSQL that provisions and fills
a declarative SQL target, stops cleanly on SIGTERM, restarts from its checkpoint, and rebuilds when the
reset generation is raised; and the same for a Projection defined in a Python module."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest

import sluice
from sluice import EventData, StreamConfig
from sluice.services.projections import projection_status
from tests.cli.conftest import free_port, run_cli, start_cli

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TARGET = json.dumps(
    {
        "keyColumns": ["order_id"],
        "table": "order_summary",
        "upserts": [{"columns": {"order_id": "$.order_id", "total": "$.total"}, "eventType": "OrderPlaced"}],
    },
    sort_keys=True,
)


def project_arguments(port: int, *, reset_generation: int = 0, target: str = TARGET) -> list[str]:
    # The operator's command line (sluice_operator.reconcile.projections.project_arguments), plus --http-host.
    return [
        "project",
        "--name",
        "order-summary",
        "--source",
        "orders",
        "--sql-target",
        target,
        "--batch-size",
        "7",
        "--reset-generation",
        str(reset_generation),
        "--http-port",
        str(port),
        "--http-host",
        "127.0.0.1",
    ]


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    return process.returncode, stderr


async def wait_until(check: Callable[[], Awaitable[bool]], process: subprocess.Popen[str], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the projection never got there")


async def ready(port: int) -> bool:
    try:
        response = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/health/ready", timeout=2)
    except httpx.TransportError:
        return False
    return response.status_code == 200


async def table_rows(dsn: str, table: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        if await connection.fetchval("SELECT to_regclass($1)", table) is None:
            return -1
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await connection.close()


def orders(numbers: range) -> list[EventData]:
    return [EventData("OrderPlaced", {"order_id": f"o-{n % 25}", "total": n}) for n in numbers]


async def test_sluice_project_fills_a_table_restarts_from_its_checkpoint_and_rebuilds(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="orders", partitions=2))
        await store.append("orders", orders(range(20)))
    port = free_port()
    first = start_cli(*project_arguments(port), dsn=postgres_dsn)
    try:
        await wait_until(lambda: ready(port), first)
        await wait_until(lambda: _equals(table_rows(postgres_dsn, "public.order_summary"), 20), first)
        metrics = (await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics", timeout=5)).text
        assert 'sluice_projection_events_applied_total{projection="order-summary"} 20.0' in metrics
    finally:
        returncode, stderr = stop(first)
    assert returncode == 0, stderr
    assert "stopped cleanly: 20 events applied" in stderr

    async with await sluice.connect(postgres_dsn) as store:
        await store.append("orders", orders(range(20, 30)))  # five new keys, five updates
    second = start_cli(*project_arguments(port), dsn=postgres_dsn)
    try:
        await wait_until(lambda: _equals(table_rows(postgres_dsn, "public.order_summary"), 25), second)
        async with await sluice.connect(postgres_dsn) as store:
            await wait_until(lambda: _lag_is_zero(store), second)
            status = await projection_status(store, "order-summary")
    finally:
        returncode, stderr = stop(second)
    assert returncode == 0, stderr
    assert "stopped cleanly: 10 events applied" in stderr  # from its checkpoint, not from the start
    assert status.active_version == 1
    assert status.rebuild is None

    third = start_cli(*project_arguments(port, reset_generation=1), dsn=postgres_dsn)
    try:
        async with await sluice.connect(postgres_dsn) as store:
            await wait_until(lambda: _active_version_is(store, 2), third)
            status = await projection_status(store, "order-summary")
        assert await table_rows(postgres_dsn, "public.order_summary") == 25
        assert await table_rows(postgres_dsn, "public.order_summary__v1") == -1
    finally:
        returncode, stderr = stop(third)
    assert returncode == 0, stderr
    assert status.to_manifest()["rebuild"]["eventsDone"] == 30
    assert status.reset_generation == 1


async def test_sluice_project_runs_a_projection_defined_in_a_module(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="numbers"))
        await store.append("numbers", [EventData("Number", {"n": n}) for n in range(12)])
    arguments = ["project", "--name", "seen", "--source", "numbers", "--batch-size", "5", "--http-port", "0"]
    process = start_cli(*arguments, "--handler", "tests.projections.handlers:counter", dsn=postgres_dsn)
    try:
        await wait_until(lambda: _equals(table_rows(postgres_dsn, "public.seen"), 12), process)
    finally:
        returncode, stderr = stop(process)
    assert returncode == 0, stderr
    batches = start_cli(
        "project",
        "--name",
        "batches",
        "--source",
        "numbers",
        "--batch-size",
        "5",
        "--http-port",
        "0",
        "--handler",
        "tests.projections.handlers:count_batches",
        dsn=postgres_dsn,
    )
    try:
        await wait_until(lambda: _equals(table_rows(postgres_dsn, "public.batches"), 3), batches)
    finally:
        returncode, stderr = stop(batches)
    assert returncode == 0, stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--handler", "tests.projections.handlers:counter"], "exactly one of"),
        (["--batch-size", "0"], "batch-size"),
    ],
)
def test_usage_errors_exit_2_before_touching_anything(extra: list[str], message: str) -> None:
    result = run_cli(*project_arguments(0), *extra, dsn="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_an_invalid_sql_target_is_a_usage_error() -> None:
    hostile = json.dumps({"table": "x; DROP TABLE y", "keyColumns": ["k"], "upserts": []})
    result = run_cli(*project_arguments(0, target=hostile), dsn="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2
    assert "invalid SQL projection target" in result.stderr


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _lag_is_zero(store: sluice.EventStore) -> bool:
    return (await projection_status(store, "order-summary")).lag_events == 0


async def _active_version_is(store: sluice.EventStore, version: int) -> bool:
    return (await projection_status(store, "order-summary")).active_version == version
