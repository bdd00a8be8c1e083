"""``sluice consume`` as a real process with an HTTP sink that fails N times: retries with the
backoff flags, dead letters after --max-attempts, then ``sluice dead-letters --group`` lists,
shows, redrives (the running worker delivers it again) and purges."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

import sluice
from sluice import EventData
from sluice.services.retries import group_dead_letters
from tests.cli.conftest import run_cli, start_cli
from tests.sinks.receiver import ReceivedRequest, Receiver

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class FailsFirstAttempts:
    """Answers 500 to the first ``failures`` requests of each event (by ce-id), then 200; events whose
    data says ``poison`` fail until ``heal()``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {}
        self.healed = False
        self._lock = threading.Lock()

    def heal(self) -> None:
        self.healed = True

    def __call__(self, request: ReceivedRequest) -> int:
        with self._lock:
            self.seen[request.event_id] += 1
            self.arrivals.setdefault(request.event_id, []).append(time.monotonic())
            if b"poison" in request.body and not self.healed:
                return 500
            return 500 if self.seen[request.event_id] <= self.failures else 200


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stderr


def cli_json(*arguments: str, dsn: str) -> object:
    result = run_cli(*arguments, "--output", "json", dsn=dsn)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def wait_for_dead_letters(dsn: str, count: int, within: float = 30.0) -> None:
    """Wait until the group ledger of payments has ``count`` dead letters (asked through the library)."""
    deadline = time.monotonic() + within
    async with await sluice.connect(dsn) as store:
        while len(await group_dead_letters(store).list("payments", "ledger")) != count:
            assert time.monotonic() < deadline, f"never {count} dead letters"
            await asyncio.sleep(0.1)


def wait_for(condition: object, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_a_sink_failing_n_times_is_retried_then_dead_lettered_then_redriven(
    postgres_dsn: str, receiver: Receiver
) -> None:
    sink = FailsFirstAttempts(failures=2)
    receiver.choose_status = sink
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
        "4",
        "--retry-backoff",
        "fixed",
        "--retry-delay",
        "0.2",
        "--no-retry-jitter",
        "--dead-letter-stream",
        "ledger-failures",
        "--commit-strategy",
        "after_each",
        "--http-port",
        "0",
        dsn=postgres_dsn,
    )
    try:
        receiver.wait_for_accepted(2)
        wait_for(lambda: sink.seen[str(poison.event_id)] >= 4)
        await asyncio.sleep(0.5)
        # the good events got through at their third attempt
        for request in receiver.accepted():
            assert request.headers["sluice-delivery-attempt"] == "3"
        first_event = [request for request in receiver.all_requests() if request.cloud_event().get_data() == {"n": 0}]
        assert len(first_event) == 3
        # fixed backoff without jitter: 0.2 s between attempts (plus the POST and process overhead)
        arrivals = sink.arrivals[first_event[0].event_id]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        assert len(gaps) == 2
        assert all(0.2 <= gap < 2.0 for gap in gaps), gaps
        listed = cli_json("dead-letters", "list", "payments", "--group", "ledger", dsn=postgres_dsn)
        assert isinstance(listed, list)
        [letter] = listed
        assert letter["event_id"] == str(poison.event_id)
        assert letter["attempts"] == 4
        assert letter["dead_letter_stream"] == "ledger-failures"
        assert "answered 500" in letter["error"]
        assert letter["data"] == {"n": "poison"}
        shown = cli_json(
            "dead-letters",
            "show",
            "payments",
            "--group",
            "ledger",
            "--id",
            str(letter["dead_letter_id"]),
            dsn=postgres_dsn,
        )
        assert shown == letter
        # heal the sink and redrive: the running worker delivers it again
        sink.heal()
        redriven = cli_json("dead-letters", "redrive", "payments", "--group", "ledger", "--all", dsn=postgres_dsn)
        assert redriven == {
            "stream": "payments",
            "group": "ledger",
            "redriven": 1,
            "dead_letter_ids": [letter["dead_letter_id"]],
        }
        receiver.wait_for_accepted(3)
        await wait_for_dead_letters(postgres_dsn, 0)
    finally:
        stderr = stop(worker)
    assert "stopped cleanly: 2 delivered, 1 dead-lettered, 1 redriven" in stderr
    assert sorted(str(request.cloud_event().get_data()["n"]) for request in receiver.accepted()) == ["0", "2", "poison"]  # type: ignore[index]
    async with await sluice.connect(postgres_dsn) as store:
        [copy] = [event async for event in store.read_stream("ledger-failures")]
        description = await store.consumer_groups().describe("payments", "ledger")
    assert copy.event_id == poison.event_id
    assert description.lag_events == 0


async def test_dead_letters_cli_purges_and_refuses_bad_input(postgres_dsn: str, receiver: Receiver) -> None:
    receiver.choose_status = lambda request: 500
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("payments", [EventData("Payment", {"n": n}) for n in range(3)])
    worker = start_cli(
        "consume",
        "--stream",
        "payments",
        "--group",
        "ledger",
        "--sink",
        receiver.url,
        "--max-attempts",
        "1",
        "--http-port",
        "0",
        dsn=postgres_dsn,
    )
    try:
        await wait_for_dead_letters(postgres_dsn, 3)
    finally:
        stop(worker)
    letters = cli_json("dead-letters", "list", "payments", "--group", "ledger", dsn=postgres_dsn)
    assert isinstance(letters, list)
    first = letters[0]["dead_letter_id"]
    purged = cli_json(
        "dead-letters", "purge", "payments", "--group", "ledger", "--id", str(first), "--yes", dsn=postgres_dsn
    )
    assert purged == {"stream": "payments", "group": "ledger", "purged": 1}
    missing = run_cli("dead-letters", "show", "payments", "--group", "ledger", "--id", str(first), dsn=postgres_dsn)
    assert missing.returncode == 1
    assert f"has no dead letter {first}" in missing.stderr
    usage = run_cli("dead-letters", "redrive", "payments", "--group", "ledger", dsn=postgres_dsn)
    assert usage.returncode == 2
    conflicting = run_cli(
        "consume", "--stream", "payments", "--group", "ledger", "--sink", receiver.url,
        "--retry-backoff", "0.5", "--retry-delay", "0.5", "--http-port", "0", dsn=postgres_dsn,
    )  # fmt: skip
    assert conflicting.returncode == 2
    assert "give the first delay once" in conflicting.stderr
    async with await sluice.connect(postgres_dsn) as store:
        remaining = await group_dead_letters(store).list("payments", "ledger")
    assert [letter.dead_letter_id for letter in remaining] == [letter["dead_letter_id"] for letter in letters[1:]]
    purged_all = cli_json("dead-letters", "purge", "payments", "--group", "ledger", "--all", "--yes", dsn=postgres_dsn)
    assert purged_all == {"stream": "payments", "group": "ledger", "purged": 2}
