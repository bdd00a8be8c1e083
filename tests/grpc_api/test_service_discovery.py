"""Server reflection lists the services; the standard health service answers SERVING, then
NOT_SERVING while the server drains; the stub drift check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sluice.rpc.server import SluiceGrpcServer
from tests.grpc_api.server_process import ServerProcess

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.slow
async def test_reflection_lists_every_service_and_health_is_serving(server_process: ServerProcess) -> None:
    async with grpc.aio.insecure_channel(server_process.target) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = reflection.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        response = await call.read()
        await call.done_writing()
        names = {service.name for service in response.list_services_response.service}
        assert {
            "sluice.v1.Streams",
            "sluice.v1.PersistentSubscriptions",
            "sluice.v1.Queues",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= names

        described = reflection.ServerReflectionInfo()
        await described.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol="sluice.v1.Streams"))
        file_response = await described.read()
        await described.done_writing()
        assert file_response.file_descriptor_response.file_descriptor_proto  # the schema, for grpcurl and friends

        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "sluice.v1.Streams", "sluice.v1.Queues"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.postgres
async def test_health_turns_not_serving_when_the_server_drains(local_server: SluiceGrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{local_server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        await local_server.services.health.enter_graceful_shutdown()
        second = await watch.read()
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()


def test_checked_in_stubs_match_the_proto() -> None:
    result = subprocess.run(
        [sys.executable, str(REPOSITORY / "scripts" / "generate_grpc_stubs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
