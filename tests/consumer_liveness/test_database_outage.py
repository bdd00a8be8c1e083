"""Consumer-group members outlive a real PostgreSQL killed with SIGKILL and started again: a library
member of a group of one, busy with a long event when the database dies and kept away longer than its
session, resumes by itself; a ``sluice consume`` worker started while the database is down stays up,
not ready (saying why), waits for the database and then for its stream, consumes, and rides out a
kill -9 in the middle of its work without exiting. Each test kills a server of its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig
from sluice.storage.postgres.embedded import EmbeddedPostgres, free_loopback_port
from tests.consumer_liveness.conftest import DATABASE

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]

REPOSITORY = Path(__file__).parents[2]
SESSION = timedelta(seconds=1)
AWAY_SECONDS = 2.5
"""How long the database stays dead: longer than the session."""


async def append_when_back(store: EventStore, stream: str, numbers: range) -> None:
    """Append (the first statements after a restart may still meet a broken connection: retried)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await store.append(stream, [EventData("E", {"n": n}) for n in numbers])
            return
        except sluice.SluiceError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def eventually(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.1)


async def test_a_lone_member_busy_when_the_database_dies_resumes_after_it_comes_back(
    killable_server: EmbeddedPostgres,
) -> None:
    dsn = killable_server.dsn(DATABASE)
    seen: list[int] = []
    long_event_started = asyncio.Event()
    options = ConsumerGroupOptions(session_timeout=SESSION, heartbeat_interval=timedelta(milliseconds=200))
    async with await sluice.connect(dsn, poll_interval=timedelta(milliseconds=100)) as store:
        await store.create_stream(StreamConfig(name="orders", partitions=2))
        await store.append("orders", [EventData("E", {"n": n}) for n in range(6)])
        consumption = store.consumer_groups().consume("orders", group_id="g", consumer_id="only", options=options)

        async def consume() -> None:
            async with consumption:
                async for event in consumption:
                    seen.append(int(event.data["n"]))
                    if event.data["n"] == 5 and not long_event_started.is_set():
                        long_event_started.set()
                        await asyncio.sleep(AWAY_SECONDS + 1)  # working while the database dies

        consuming = asyncio.create_task(consume())
        await asyncio.wait_for(long_event_started.wait(), 20)
        await asyncio.to_thread(killable_server.kill)
        await asyncio.sleep(AWAY_SECONDS)
        during = consumption.health
        await asyncio.to_thread(killable_server.restart)
        await append_when_back(store, "orders", range(6, 12))

        async def everything_seen() -> bool:
            assert not consuming.done(), f"the consumption ended: {consuming}"
            return set(range(12)) <= set(seen)

        await eventually(everything_seen, 30, "the member processed the events appended after the restart")
        await eventually(lambda: asyncio.sleep(0, consumption.health.ready), 10, "the member reports ready again")
        described = await store.consumer_groups().describe("orders", "g")
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
    assert not during.ready
    assert "database unavailable" in during.reason
    assert [member.consumer_id for member in described.active_members] == ["only"]
    assert sorted(described.members[0].partitions) == [0, 1]


class ConsumeProcess:
    """A ``sluice consume`` worker that records what its handler got (tests/cli/handlers.py)."""

    def __init__(self, dsn: str, work: Path) -> None:
        self.record = work / "handled.jsonl"
        self.log = work / "worker.log"
        self.port = free_loopback_port()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluice.cli",
                    "consume",
                    "--stream",
                    "orders",
                    "--group",
                    "g",
                    "--consumer-id",
                    "worker",
                    "--handler",
                    "tests.cli.handlers:record_sync",
                    "--commit-strategy",
                    "after_each",
                    "--session-timeout",
                    str(SESSION.total_seconds()),
                    "--http-host",
                    "127.0.0.1",
                    "--http-port",
                    str(self.port),
                    "--dsn",
                    dsn,
                ],
                cwd=REPOSITORY,
                env={**os.environ, "PYTHONPATH": str(REPOSITORY), "SLUICE_TEST_HANDLER_RECORD": str(self.record)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def handled(self) -> list[int]:
        if not self.record.exists():
            return []
        return [json.loads(line)["data"]["n"] for line in self.record.read_text().splitlines()]

    async def readiness(self) -> tuple[int, str]:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.get(f"http://127.0.0.1:{self.port}/health/ready")
        except httpx.TransportError as error:
            return 0, f"no answer: {error}"
        return answer.status_code, answer.text

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"sluice consume exited with {self.process.returncode}:\n{self.log.read_text()}")
        return True


async def test_sluice_consume_waits_for_the_database_and_its_stream_and_rides_out_a_kill_9(
    killable_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    dsn = killable_server.dsn(DATABASE)
    await asyncio.to_thread(killable_server.kill)  # down before the worker starts
    worker = ConsumeProcess(dsn, tmp_path)
    try:

        async def not_ready_for_its_database() -> bool:
            status, reason = await worker.readiness()
            return worker.alive() and status == 503 and "database unavailable" in reason

        await eventually(not_ready_for_its_database, 30, "the worker serves its probes, not ready: no database")
        await asyncio.sleep(2)  # several connection attempts
        assert worker.alive(), "a worker whose database is down at start-up waits for it"
        assert await not_ready_for_its_database()

        await asyncio.to_thread(killable_server.restart)

        async def waiting_for_the_stream() -> bool:
            status, reason = await worker.readiness()
            return worker.alive() and status == 503 and "waiting for stream 'orders'" in reason

        await eventually(waiting_for_the_stream, 30, "the worker waits for its stream once the database is back")
        async with await sluice.connect(dsn) as store:
            await store.append("orders", [EventData("E", {"n": n}) for n in range(5)])  # creates the stream
            await eventually(lambda: asyncio.sleep(0, len(set(worker.handled())) == 5), 30, "the worker consumes")
            assert (await worker.readiness())[0] == 200

            await asyncio.to_thread(killable_server.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(killable_server.restart)
            await append_when_back(store, "orders", range(5, 10))

            async def all_handled() -> bool:
                return worker.alive() and set(worker.handled()) == set(range(10))

            await eventually(all_handled, 40, "the worker processed the events appended after the kill -9")
            await eventually(lambda: _ready(worker), 20, "the worker is ready again")
        worker.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.process.wait, 20) == 0
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


async def _ready(worker: ConsumeProcess) -> bool:
    return (await worker.readiness())[0] == 200
