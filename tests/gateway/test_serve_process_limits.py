"""``sluice serve`` as a process under hostile conditions: SIGTERM while the database hangs (issue 16,
item 4) and huge REST bodies (item 16)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sluice import EventData
from sluice.client import SluiceClient
from tests.gateway.running import TOKEN, serve_process, wait_until_ready
from tests.gateway.tcp_proxy import TcpProxy, dsn_via

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

GRACE_SECONDS = 2.0
CLOSE_SECONDS = 2.0
STOP_LIMIT_SECONDS = GRACE_SECONDS + CLOSE_SECONDS + 4.0
"""The grace period, the close steps' limit, and a few seconds for the interpreter to exit on a busy machine
(the watchdog would end the process with code 1 after GRACE + CLOSE + 5 s)."""
MEBIBYTE = 1024 * 1024
HUGE_BODY_BYTES = 100 * MEBIBYTE
SHUTDOWN_ARGUMENTS = ("--grace-seconds", str(GRACE_SECONDS), "--close-seconds", str(CLOSE_SECONDS))


async def exits_after_sigterm(process: asyncio.subprocess.Process) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    return_code = await asyncio.wait_for(process.wait(), timeout=STOP_LIMIT_SECONDS + 10)
    return return_code, time.monotonic() - started


async def test_sigterm_stops_the_gateway_in_time_while_the_database_hangs(postgres_dsn: str, tmp_path: Path) -> None:
    database = TcpProxy(postgres_dsn)
    await database.start()
    try:
        async with serve_process(dsn_via(postgres_dsn, database.port), tmp_path, *SHUTDOWN_ARGUMENTS) as gateway:
            assert (await wait_until_ready(gateway.http_base)).status_code == 200
            async with await SluiceClient.connect(
                f"127.0.0.1:{gateway.ports['grpc_port']}", token=TOKEN
            ) as grpc_client:
                await grpc_client.create_stream("jobs")
                await grpc_client.append("jobs", [EventData(event_type="Job", data={"n": 1})])
                member = await grpc_client.consume("jobs", group_id="workers", consumer_id="w1", reconnect_for=None)
                held = await anext(member)  # a group member's streaming call is open: draining it leaves the group
                assert held.event_type == "Job"
                database.freeze()
                return_code, took = await stop_with_hung_requests(gateway.http_base, gateway.process)
                with contextlib.suppress(Exception):
                    await member.__aexit__(None, None, None)
            assert return_code == 0, gateway.log_text()
            assert took < STOP_LIMIT_SECONDS, f"stopping took {took:.1f} s\n{gateway.log_text()}"
    finally:
        await database.close()


async def stop_with_hung_requests(http_base: str, process: asyncio.subprocess.Process) -> tuple[int, float]:
    """SIGTERM while two REST requests wait for the frozen database; the exit code and how long it took."""
    authorization = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=http_base, timeout=60) as http:
        hung = [
            asyncio.create_task(http.get("/api/event-streams", headers=authorization)),
            asyncio.create_task(http.post("/api/event-streams", json={"name": "orders"}, headers=authorization)),
        ]
        await asyncio.sleep(1.0)
        assert not any(task.done() for task in hung), "the frozen database still answered"
        return_code, took = await exits_after_sigterm(process)
        for task in hung:
            task.cancel()
        await asyncio.gather(*hung, return_exceptions=True)
    return return_code, took


async def test_sigterm_stops_a_gateway_still_waiting_for_a_database_that_never_answers(tmp_path: Path) -> None:
    silent = TcpProxy(None)
    await silent.start()
    try:
        dsn = f"postgresql://sluice@127.0.0.1:{silent.port}/sluice"
        async with serve_process(dsn, tmp_path, *SHUTDOWN_ARGUMENTS) as gateway:
            async with httpx.AsyncClient(base_url=gateway.http_base, timeout=10) as http:
                assert (await http.get("/health/live")).status_code == 200
                assert (await http.get("/health/ready")).status_code == 503
            return_code, took = await exits_after_sigterm(gateway.process)
            assert return_code == 0, gateway.log_text()
            assert took < STOP_LIMIT_SECONDS, f"stopping took {took:.1f} s\n{gateway.log_text()}"
    finally:
        await silent.close()


async def huge_body(total_bytes: int) -> AsyncIterator[bytes]:
    chunk = b'{"events": [{"type": "T", "data": "' + b"x" * MEBIBYTE
    sent = 0
    while sent < total_bytes:
        yield chunk
        sent += len(chunk)


async def send_huge_body(http_base: str, *, declare_length: bool) -> int | None:
    """Send a 100 MB append; the status, or None when the server closed the connection first."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if declare_length:
        headers["Content-Length"] = str(HUGE_BODY_BYTES)
    async with httpx.AsyncClient(base_url=http_base, timeout=60) as http:
        with contextlib.suppress(httpx.TransportError):
            answer = await http.post(
                "/api/event-streams/orders/events", content=huge_body(HUGE_BODY_BYTES), headers=headers
            )
            return answer.status_code
    return None


async def test_huge_request_bodies_do_not_grow_the_servers_memory(postgres_dsn: str, tmp_path: Path) -> None:
    async with serve_process(postgres_dsn, tmp_path) as gateway:
        assert (await wait_until_ready(gateway.http_base)).status_code == 200
        before = gateway.resident_bytes()
        statuses = [await send_huge_body(gateway.http_base, declare_length=declared) for declared in (True, False)]
        statuses += await asyncio.gather(*(send_huge_body(gateway.http_base, declare_length=False) for _ in range(3)))
        grown = gateway.resident_bytes() - before
        assert grown < 50 * MEBIBYTE, f"RSS grew by {grown / MEBIBYTE:.0f} MiB"
        assert set(statuses) <= {413, None}, statuses
        async with httpx.AsyncClient(base_url=gateway.http_base, timeout=10) as http:
            assert (await http.get("/health/live")).status_code == 200
