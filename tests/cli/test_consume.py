"""``sluice consume`` as the operator runs it: a real subprocess against PostgreSQL, delivering to a
real HTTP receiver or a handler module; SIGTERM stops it cleanly with everything committed. Bad input,
which ends the command before it consumes, runs in the test process (tests/cli/in_process.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import sluice
from sluice import EventData, StreamConfig
from sluice.services.sinks.dead_letters import DEAD_LETTER_METADATA_KEY
from tests.cli.conftest import free_port, run_cli, start_cli
from tests.sinks.receiver import ReceivedRequest, Receiver

pytestmark = pytest.mark.slow


def stop(process: subprocess.Popen[str], signal_number: int = signal.SIGTERM) -> tuple[int, str, str]:
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=20)
    return process.returncode, stdout, stderr


def wait_for_ready(port: int, process: subprocess.Popen[str], within: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if response.status_code == 200:
            return response
        time.sleep(0.1)
    raise AssertionError("the worker never became ready")


def json_log_lines(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


async def test_events_flow_to_the_sink_and_sigterm_leaves_everything_committed(
    postgres_dsn: str, receiver: Receiver
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="orders", partitions=3))
        await store.append("orders", [EventData("OrderPlaced", {"n": n}) for n in range(30)])
    port = free_port()
    worker = start_cli(
        "consume",
        "--sink",
        receiver.url,
        "--consumer-id",
        "pod-0",
        "--http-port",
        str(port),
        "--http-host",
        "127.0.0.1",
        dsn=postgres_dsn,
        SLUICE_STREAM="orders",  # every flag also reads SLUICE_<FLAG>
        SLUICE_GROUP="billing",
        SLUICE_BATCH_SIZE="7",
    )
    try:
        receiver.wait_for_accepted(30)
        ready = wait_for_ready(port, worker)
        assert "consuming partitions [0, 1, 2]" in ready.text
        async with await sluice.connect(postgres_dsn) as store:
            await store.append("orders", [EventData("OrderShipped", {"n": n}) for n in range(30, 40)])
        receiver.wait_for_accepted(40)
        metrics = (await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics", timeout=5)).text
        assert 'sluice_worker_events_delivered_total{group="billing",stream="orders"} 40.0' in metrics
    finally:
        returncode, _, stderr = stop(worker)
    assert returncode == 0, stderr
    delivered = sorted(request.cloud_event().get_data()["n"] for request in receiver.accepted())  # type: ignore[index]
    assert delivered == list(range(40))  # each exactly once: nothing failed, nothing redelivered
    logs = json_log_lines(stderr)  # every stderr line is a JSON object
    assert any("stopped cleanly: 40 delivered, 0 dead-lettered" in str(line["message"]) for line in logs)
    async with await sluice.connect(postgres_dsn) as store:
        description = await store.consumer_groups().describe("orders", "billing")
        info = await store.get_stream("orders")
    assert description.lag_events == 0
    assert [p.committed_offset for p in description.partitions] == [p.head for p in info.partition_heads]
    assert not description.active_members  # it left the group on the way out
    assert [member.consumer_id for member in description.members] in ([], ["pod-0"])


async def test_a_sink_answering_500_dead_letters_and_commits_past(postgres_dsn: str, receiver: Receiver) -> None:
    def poison_gets_500(request: ReceivedRequest) -> int:
        return 500 if b"poison" in request.body else 202

    receiver.choose_status = poison_gets_500
    async with await sluice.connect(postgres_dsn) as store:
        poison = EventData("Payment", {"n": "poison"})
        await store.append("payments", [EventData("Payment", {"n": 0}), poison, EventData("Payment", {"n": 2})])
    worker = start_cli(
        "consume",
        "--stream",
        "payments",
        "--group",
        "ledger",
        "--sink",
        receiver.url,
        "--max-attempts",
        "3",
        "--retry-backoff",
        "0.01",
        "--commit-strategy",
        "after_each",
        "--http-port",
        "0",
        dsn=postgres_dsn,
    )
    try:
        receiver.wait_for_accepted(2)
        receiver.wait_for_requests(5)
        await asyncio.sleep(0.5)
    finally:
        returncode, _, stderr = stop(worker)
    assert returncode == 0, stderr
    assert len([request for request in receiver.requests if b"poison" in request.body]) == 3
    async with await sluice.connect(postgres_dsn) as store:
        [dead] = [event async for event in store.read_stream("payments.ledger.dead-letter")]
        description = await store.consumer_groups().describe("payments", "ledger")
    assert dead.event_id == poison.event_id
    assert dead.data == {"n": "poison"}
    assert dead.metadata[DEAD_LETTER_METADATA_KEY]["attempts"] == 3
    assert "answered 500" in dead.metadata[DEAD_LETTER_METADATA_KEY]["error"]
    assert description.lag_events == 0


async def test_a_handler_module_consumes_and_dead_letters(postgres_dsn: str, tmp_path: Path) -> None:
    record = tmp_path / "handled.jsonl"
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("jobs", [EventData("Job", {"n": n, "fail": n == 3}) for n in range(6)])
    worker = start_cli(
        "consume",
        "--stream",
        "jobs",
        "--group",
        "runners",
        "--handler",
        "tests.cli.handlers:record_or_fail",
        "--max-attempts",
        "2",
        "--retry-backoff",
        "0.01",
        "--http-port",
        "0",
        dsn=postgres_dsn,
        SLUICE_TEST_HANDLER_RECORD=str(record),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = record.read_text().splitlines() if record.exists() else []
            if len(lines) == 5:
                break
            assert worker.poll() is None, worker.communicate()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        returncode, _, stderr = stop(worker, signal.SIGINT)
    assert returncode == 0, stderr
    handled = [json.loads(line) for line in record.read_text().splitlines()]
    assert [line["offset"] for line in handled] == [0, 1, 2, 4, 5]
    async with await sluice.connect(postgres_dsn) as store:
        [dead] = [event async for event in store.read_stream("jobs.runners.dead-letter")]
        description = await store.consumer_groups().describe("jobs", "runners")
    assert dead.data == {"n": 3, "fail": True}
    assert "RuntimeError: refusing event 3" in dead.metadata[DEAD_LETTER_METADATA_KEY]["error"]
    assert description.lag_events == 0


@pytest.mark.parametrize(
    ("arguments", "exit_code", "message"),
    [
        (
            ["--stream", "missing", "--handler", "tests.cli.handlers:record_sync", "--no-auto-create-streams"],
            1,
            "stream 'missing' does not exist and is not auto-created",
        ),
        (["--stream", "orders", "--handler", "no_colon"], 2, "expected 'module:function'"),
        (["--stream", "orders", "--handler", "tests.cli.nothing:handler"], 2, "cannot import module"),
        (["--stream", "orders", "--handler", "tests.cli.handlers:missing"], 2, "has no attribute 'missing'"),
        (["--stream", "orders", "--handler", "tests.cli.handlers:json"], 2, "not callable"),
        (["--stream", "orders"], 2, "give exactly one of --sink URL or --handler MODULE:FUNCTION"),
        (
            ["--stream", "orders", "--sink", "http://127.0.0.1:9/x", "--handler", "tests.cli.handlers:record_sync"],
            2,
            "give exactly one of --sink URL or --handler",
        ),
        (["--stream", "orders", "--sink", "not-a-url"], 2, "invalid sink URL"),
        (["--stream", "bad name", "--sink", "http://127.0.0.1:9/x"], 2, "invalid stream name"),
        (["--stream", "orders", "--sink", "http://127.0.0.1:9/x", "--batch-size", "0"], 2, "--batch-size"),
        (["--stream", "orders", "--sink", "http://127.0.0.1:9/x", "--commit-strategy", "never"], 2, "never"),
    ],
)
async def test_bad_input_exits_with_a_message_and_no_side_effects(
    postgres_dsn: str, arguments: list[str], exit_code: int, message: str
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("orders", [EventData("OrderPlaced", {"n": 1})])
    result = run_cli("consume", "--group", "billing", "--http-port", "0", *arguments, dsn=postgres_dsn)
    assert result.returncode == exit_code, result.stderr
    assert message in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error")
    async with await sluice.connect(postgres_dsn) as store:
        assert await store.consumer_groups().list_groups() == []
        assert [info.name for info in await store.list_streams()] == ["orders"]
