"""``sluice serve`` as users run it: one process serving gRPC and the REST API (with health and metrics)
over one store, sharing bearer tokens, carrying correlation ids, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sluice import EventData
from sluice.client import SluiceClient
from sluice.core.errors import UnauthenticatedError

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TOKEN = "gateway-test-token"
STARTUP_SECONDS = 30.0


class Gateway:
    def __init__(self, process: subprocess.Popen[bytes], ports: dict[str, int], log: Path) -> None:
        self.process = process
        self.grpc_target = f"127.0.0.1:{ports['grpc_port']}"
        self.http_base = f"http://127.0.0.1:{ports['http_port']}"
        self.log = log


@pytest.fixture
def gateway(postgres_dsn: str, tmp_path: Path) -> Iterator[Gateway]:
    ready_file = tmp_path / "ready.json"
    log = tmp_path / "serve.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    environment["SLUICE_API_TOKENS"] = f"tester={TOKEN}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluice.cli",
                "serve",
                "--dsn",
                postgres_dsn,
                "--grpc-address",
                "127.0.0.1:0",
                "--http-address",
                "127.0.0.1:0",
                "--grace-seconds",
                "2",
                "--ready-file",
                str(ready_file),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not ready_file.exists() or not ready_file.read_text(encoding="utf-8"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sluice serve did not start:\n{log.read_text(encoding='utf-8')}")
            time.sleep(0.05)
        yield Gateway(process, json.loads(ready_file.read_text(encoding="utf-8")), log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def test_grpc_and_rest_share_one_store_tokens_and_metrics(gateway: Gateway) -> None:
    async with await SluiceClient.connect(gateway.grpc_target, token=TOKEN) as client:
        await client.create_stream("orders", partitions=2)
        result = await client.append(
            "orders",
            [EventData(event_type="OrderPlaced", data={"order": index}) for index in range(5)],
            partition_key="customer-1",
            correlation_id="request-42",
        )
    assert len(result.offsets) == 5

    async with httpx.AsyncClient(base_url=gateway.http_base, timeout=10) as http:
        unauthorised = await http.get("/api/event-streams")
        assert unauthorised.status_code == 401
        assert unauthorised.headers["content-type"].startswith("application/problem+json")
        described = await http.get("/api/event-streams/orders", headers={"Authorization": f"Bearer {TOKEN}"})
        assert described.status_code == 200, described.text
        body = described.json()
        assert body["partitions"] == 2
        assert sum(partition["head"] for partition in body["head_offsets"]) == 5
        assert body["approximate_event_count"] == 5
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.get("/health/ready")).status_code == 200
        metrics_text = (await http.get("/metrics")).text

    appended = {
        sample.labels["stream"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "sluice_events_appended"
        for sample in family.samples
        if sample.name == "sluice_events_appended_total"
    }
    assert appended == {"orders": 5.0}


async def test_grpc_refuses_a_missing_token(gateway: Gateway) -> None:
    async with await SluiceClient.connect(gateway.grpc_target) as client:
        with pytest.raises(UnauthenticatedError):
            await client.create_stream("orders")


def test_sigterm_stops_both_servers_cleanly(gateway: Gateway) -> None:
    gateway.process.send_signal(signal.SIGTERM)
    assert gateway.process.wait(timeout=20) == 0, gateway.log.read_text(encoding="utf-8")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gateway.http_base}/health/live", timeout=2)
    log_lines = [
        json.loads(line) for line in gateway.log.read_text(encoding="utf-8").splitlines() if line.startswith("{")
    ]
    messages = [line["message"] for line in log_lines]
    assert "serving" in messages
    assert "stopping" in messages
