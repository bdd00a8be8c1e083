"""``sluice serve`` with an access policy file: both doors enforce it, denials are JSON audit lines in the
server's log, and a malformed policy stops the server from starting."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice import EventData
from sluice.client import SluiceClient
from sluice.core.errors import PermissionDeniedError
from tests.access_control.conftest import POLICY_DOCUMENT, TOKENS, bearer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STARTUP_SECONDS = 30.0


def serve_command(postgres_dsn: str, ready_file: Path) -> list[str]:
    return [
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
        "1",
        "--ready-file",
        str(ready_file),
    ]


def environment_with(policy_file: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    environment["SLUICE_API_TOKENS"] = ",".join(f"{principal}={token}" for principal, token in TOKENS.items())
    environment["SLUICE_ACCESS_POLICY_FILE"] = str(policy_file)
    return environment


@pytest.fixture
def gateway(postgres_dsn: str, tmp_path: Path) -> Iterator[tuple[dict[str, int], Path]]:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY_DOCUMENT, encoding="utf-8")
    ready_file = tmp_path / "ready.json"
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            serve_command(postgres_dsn, ready_file),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment_with(policy_file),
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not ready_file.exists() or not ready_file.read_text(encoding="utf-8"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sluice serve did not start:\n{log.read_text(encoding='utf-8')}")
            time.sleep(0.05)
        yield json.loads(ready_file.read_text(encoding="utf-8")), log
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def test_both_doors_enforce_the_policy_file_and_log_denials(gateway: tuple[dict[str, int], Path]) -> None:
    ports, log = gateway
    target = f"127.0.0.1:{ports['grpc_port']}"
    async with await SluiceClient.connect(target, token=TOKENS["reader"]) as reader:
        with pytest.raises(PermissionDeniedError):
            await reader.append("orders", EventData("OrderPlaced", {}), correlation_id="serve-denied-1")
    async with await SluiceClient.connect(target, token=TOKENS["writer"]) as writer:
        assert (await writer.append("orders", EventData("OrderPlaced", {}))).offsets == (0,)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['http_port']}") as http:
        denied = await http.delete(
            "/api/event-streams/orders", headers={**bearer("writer"), "X-Correlation-Id": "serve-denied-2"}
        )
        assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
        described = await http.get("/api/event-streams/orders", headers=bearer("reader"))
        assert described.status_code == 200
        assert described.json()["approximate_event_count"] == 1  # the reader's append was not stored

    audit: list[dict[str, object]] = []
    deadline = time.monotonic() + 5
    while len(audit) < 2 and time.monotonic() < deadline:
        lines = log.read_text(encoding="utf-8").splitlines()
        audit = [record for record in map(_json_or_empty, lines) if record.get("logger") == "sluice.audit"]
        await asyncio.sleep(0.05)
    summary = [(record["principal"], record["action"], record["stream"], record["correlation_id"]) for record in audit]
    assert summary == [
        ("reader", "append", "orders", "serve-denied-1"),
        ("writer", "delete_stream", "orders", "serve-denied-2"),
    ]
    assert all(record["outcome"] == "denied" and record["level"] == "WARNING" for record in audit)


def test_a_malformed_policy_stops_the_server_from_starting(postgres_dsn: str, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("grants: [{principals: [a], streams: ['*'], permissions: [everything]}]", encoding="utf-8")
    completed = subprocess.run(
        serve_command(postgres_dsn, tmp_path / "ready.json"),
        env=environment_with(policy_file),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "access policy file" in completed.stderr
    assert "permissions" in completed.stderr
    assert not (tmp_path / "ready.json").exists()


def _json_or_empty(line: str) -> dict[str, object]:
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
