"""A saga worker killed (SIGKILL) at any point ends, once restarted, completed or fully compensated,
with every side effect applied exactly once. The worker is a real ``sluice sagas run`` process; the
saga (tests/sagas/crash_saga.py) kills its own process at the point each case names."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import sys

import asyncpg
import pytest

import sluice
from sluice import EventData
from sluice.services.sagas import SagaStatus, saga_id_for, saga_repository
from sluice.storage.postgres.store import PostgresEventStore
from tests.sagas.crash_saga import CREATE_TABLES, STEPS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[2]
SLUICE = pathlib.Path(sys.executable).with_name("sluice")


async def _start_worker(dsn: str, crash_point: str, marker: pathlib.Path) -> asyncio.subprocess.Process:
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY_ROOT),
        "SAGA_CRASH_POINT": crash_point,
        "SAGA_CRASH_MARKER": str(marker),
    }
    return await asyncio.create_subprocess_exec(
        str(SLUICE),
        "sagas",
        "run",
        "--saga",
        "tests.sagas.crash_saga:saga",
        "--dsn",
        dsn,
        "--worker-id",
        "crash-worker",
        "--lease-seconds",
        "3",
        cwd=REPOSITORY_ROOT,
        env=environment,
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        process.kill()
        await process.wait()


@pytest.mark.parametrize(
    ("crash_point", "fail_step", "expected"),
    [
        ("reserve:do:before", None, SagaStatus.COMPLETED),
        ("charge:do:after", None, SagaStatus.COMPLETED),  # between the side effect and the state save
        ("ship:do:after", None, SagaStatus.COMPLETED),
        ("charge:undo:after", "ship", SagaStatus.COMPENSATED),  # mid-compensation
        ("reserve:undo:before", "ship", SagaStatus.COMPENSATED),
        ("ship:do:before", "ship", SagaStatus.COMPENSATED),  # the failing step itself
    ],
)
async def test_a_killed_worker_is_resumed_by_the_next_one(
    postgres_dsn: str, tmp_path: pathlib.Path, crash_point: str, fail_step: str | None, expected: SagaStatus
) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(CREATE_TABLES)
    finally:
        await connection.close()
    marker = tmp_path / "crashed"
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("crash-orders", EventData("OrderPlaced", {"order_id": "o-1", "fail_step": fail_step}))
        saga_id = saga_id_for("crash-test", "o-1")

        first = await _start_worker(postgres_dsn, crash_point, marker)
        try:
            assert await asyncio.wait_for(first.wait(), 60) == -signal.SIGKILL
        finally:
            await _stop(first)
        assert marker.exists()
        crashed = await saga_repository(store).load(saga_id)
        assert crashed is not None
        assert not crashed.status.finished, "the crash happened mid-way"

        second = await _start_worker(postgres_dsn, crash_point, marker)
        try:
            async with asyncio.timeout(60):
                while (instance := await saga_repository(store).load(saga_id)) is None or not instance.status.finished:
                    assert second.returncode is None, "the restarted worker died"
                    await asyncio.sleep(0.1)
        finally:
            await _stop(second)
        assert instance.status is expected

        assert isinstance(store, PostgresEventStore)
        async with store.acquire() as connection:
            effects = await connection.fetch(
                "SELECT step, kind, count(*) AS applied FROM public.saga_crash_effects GROUP BY step, kind"
            )
            calls = await connection.fetchval("SELECT count(*) FROM public.saga_crash_calls")
    applied = {(row["step"], row["kind"]): row["applied"] for row in effects}
    if expected is SagaStatus.COMPLETED:
        assert applied == {(step, "do"): 1 for step in STEPS}
    else:
        done = STEPS[: STEPS.index(fail_step)]
        # Every step that happened is undone once; the failed step's compensation ran too and
        # found nothing to undo (it never happened).
        assert applied == {(step, "do"): 1 for step in done} | {(step, "undo"): 1 for step in done}
    # The crashed call was made again by the second worker: more calls than effects.
    assert calls > len(applied)
