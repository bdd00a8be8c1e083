"""``sluice serve`` starts while its database is unreachable or not migrated (issue 16, item 5): alive,
not ready with the reason, gRPC health NOT_SERVING and API calls refused as unavailable; it retries and
serves by itself once the database is there."""

from __future__ import annotations

import asyncio
import sys
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

import sluice
from sluice.rpc.refusal import FIRST_REQUEST_SECONDS
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.serving.serve import ServeSettings
from tests.gateway.running import gateway_in_process, grpc_health, wait_until_ready
from tests.gateway.tcp_proxy import TcpProxy, dsn_via, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def settings_for(dsn: str) -> ServeSettings:
    return ServeSettings(
        database_url=dsn, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0", grace_seconds=1, close_seconds=2
    )


async def assert_waiting(http: httpx.AsyncClient, grpc_port: int, reason: str) -> None:
    assert (await http.get("/health/live")).status_code == 200
    readiness = await http.get("/health/ready")
    assert readiness.status_code == 503
    assert readiness.json()["ready"] is False
    assert reason in readiness.json()["detail"]
    refused = await http.get("/api/event-streams")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "database_unavailable"
    assert await grpc_health(grpc_port) == NOT_SERVING
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused_call:
            await channel.unary_unary("/sluice.v1.Streams/ListStreams")(b"", timeout=5)
    assert refused_call.value.code() is grpc.StatusCode.UNAVAILABLE


async def assert_serving(http: httpx.AsyncClient, grpc_port: int) -> None:
    readiness = await wait_until_ready(str(http.base_url))
    assert readiness.status_code == 200, readiness.text
    assert (await http.get("/api/event-streams")).status_code == 200
    assert await grpc_health(grpc_port) == SERVING


async def test_an_unreachable_database_leaves_the_gateway_up_until_it_comes(postgres_dsn: str) -> None:
    port = free_port()
    database = TcpProxy(postgres_dsn, port=port)
    try:
        async with (
            gateway_in_process(settings_for(dsn_via(postgres_dsn, port))) as addresses,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{addresses.http_port}", timeout=10) as http,
        ):
            await assert_waiting(http, addresses.grpc_port, "waiting for the database")
            await database.start()
            await assert_serving(http, addresses.grpc_port)
    finally:
        await database.close()


async def test_an_unmigrated_database_makes_the_gateway_wait_for_the_migration(fresh_database: str) -> None:
    async with (
        gateway_in_process(settings_for(fresh_database)) as addresses,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{addresses.http_port}", timeout=10) as http,
    ):
        await assert_waiting(http, addresses.grpc_port, "MigrationError")
        migrated = await sluice.connect(fresh_database, migrate=True)
        await migrated.close()
        await assert_serving(http, addresses.grpc_port)


async def wait_for_grpc_health(port: int, wanted: int, *, within_seconds: float = 30.0) -> int:
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        status = await grpc_health(port)
        if status == wanted or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.5)


async def test_grpc_health_follows_readiness_when_the_database_goes_and_comes_back(postgres_dsn: str) -> None:
    port = free_port()
    database = TcpProxy(postgres_dsn, port=port)
    await database.start()
    try:
        async with gateway_in_process(settings_for(dsn_via(postgres_dsn, port))) as addresses:
            assert await grpc_health(addresses.grpc_port) == SERVING
            await database.close()
            assert await wait_for_grpc_health(addresses.grpc_port, NOT_SERVING) == NOT_SERVING
            database = TcpProxy(postgres_dsn, port=port)
            await database.start()
            assert await wait_for_grpc_health(addresses.grpc_port, SERVING) == SERVING
    finally:
        await database.close()


WAITING_SERVER = """
import asyncio
from sluice.serving.grpc_health import WaitingGrpcServer
async def main() -> None:
    waiting = WaitingGrpcServer(address="127.0.0.1:0", tls=None)
    await waiting.start()
    print(waiting.address, flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


async def test_the_waiting_grpc_server_refuses_streams_with_unavailable_every_time() -> None:
    """A group consumer that opens its stream while the gateway waits for its database must see UNAVAILABLE
    (which clients retry on). Refused before its first request arrived, grpc's asyncio client could report
    INTERNAL "Internal error from Core" instead (grpc/grpc#36066), and the consumer would give up. The
    server runs in a process of its own: in this event loop it could never answer before the client wrote."""
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", WAITING_SERVER, stdout=asyncio.subprocess.PIPE)
    try:
        assert server.stdout is not None
        address = (await asyncio.wait_for(server.stdout.readline(), 30)).decode().strip()
        async with grpc.aio.insecure_channel(address) as channel:
            consume = sluice_pb2_grpc.PersistentSubscriptionsStub(channel).Consume
            codes = []
            for attempt in range(100):
                call = consume()
                await asyncio.sleep(0.002 * (attempt % 5))  # clients write their first request a moment later
                try:
                    opening = sluice_pb2.ConsumeOpen(stream_name="orders", group_id="g", consumer_id=f"c{attempt}")
                    await call.write(sluice_pb2.ConsumeRequest(open=opening))
                    await call.read()
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code())
            assert codes == [grpc.StatusCode.UNAVAILABLE] * 100
            # A client that never sends its first request is not held: refused after FIRST_REQUEST_SECONDS.
            silent = consume()
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await asyncio.wait_for(silent.read(), FIRST_REQUEST_SECONDS + 10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert FIRST_REQUEST_SECONDS - 1 <= time.monotonic() - started <= FIRST_REQUEST_SECONDS + 5
    finally:
        server.kill()
        await server.wait()
