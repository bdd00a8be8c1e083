"""Helpers that run the gateway for a test: in process (``serve`` with a stop event) or as a real
``sluice serve`` process (for signals, exit codes and memory), without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sluice.serving.serve import ServeSettings, ServingAddresses, serve

STARTUP_SECONDS = 30.0
TOKEN = "gateway-test-token"


@contextlib.asynccontextmanager
async def gateway_in_process(settings: ServeSettings) -> AsyncIterator[ServingAddresses]:
    stop = asyncio.Event()
    announced: asyncio.Future[ServingAddresses] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(serve(settings, ready=announced.set_result, stop=stop), name="test-gateway")
    try:
        await asyncio.wait({serving, announced}, timeout=STARTUP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()
            raise AssertionError("the gateway stopped while starting")
        yield announced.result()
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=STARTUP_SECONDS)


async def grpc_health(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return int(response.status)


async def wait_until_ready(http_base: str, *, within_seconds: float = 30.0) -> httpx.Response:
    async with httpx.AsyncClient(base_url=http_base, timeout=5) as http:
        deadline = asyncio.get_running_loop().time() + within_seconds
        while True:
            answer = await http.get("/health/ready")
            if answer.status_code == 200 or asyncio.get_running_loop().time() > deadline:
                return answer
            await asyncio.sleep(0.2)


class ServeProcess:
    """A ``sluice serve`` subprocess; ``ports`` once it has written its ready file."""

    def __init__(self, process: asyncio.subprocess.Process, ports: dict[str, int], log: Path) -> None:
        self.process = process
        self.ports = ports
        self.log = log
        self.http_base = f"http://127.0.0.1:{ports['http_port']}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def resident_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextlib.asynccontextmanager
async def serve_process(dsn: str, directory: Path, *arguments: str) -> AsyncIterator[ServeProcess]:
    ready_file = directory / "ready.json"
    log = directory / "serve.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    environment["SLUICE_API_TOKENS"] = f"tester={TOKEN}"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sluice.cli",
            "serve",
            "--dsn",
            dsn,
            "--grpc-address",
            "127.0.0.1:0",
            "--http-address",
            "127.0.0.1:0",
            *arguments,
            "--ready-file",
            str(ready_file),
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
        while not ready_file.exists() or not ready_file.read_text(encoding="utf-8").endswith("}"):
            if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"sluice serve did not start:\n{log.read_text(encoding='utf-8')}")
            await asyncio.sleep(0.05)
        yield ServeProcess(process, json.loads(ready_file.read_text(encoding="utf-8")), log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
