"""``sluice replay`` as a real subprocess against PostgreSQL: a replay SIGKILLed mid-way and run
again leaves each source event exactly once, in order, in its target stream; status and cancel from
another process; exit codes and messages for failures and usage errors."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

import sluice
from sluice import EventData, EventStore, StreamConfig
from sluice.core.errors import ReplayNotFoundError
from sluice.services.replay import REPLAYED_FROM_KEY, ReplayProgress, Replays, ReplayState, replayed_event_id
from tests.cli.conftest import REPOSITORY_ROOT, cli_environment, run_cli, start_cli

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    opened = await sluice.connect(postgres_dsn)
    yield opened
    await opened.close()


async def fill(store: EventStore, count: int) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [EventData("Numbered", {"n": number}) for number in range(count)])


async def wait_for_progress(
    store: EventStore, name: str, events: int, process: subprocess.Popen[str]
) -> ReplayProgress:
    """Wait until the replay has recorded at least ``events`` (failing if its process ended first)."""
    for _ in range(400):
        assert process.poll() is None, process.communicate()
        try:
            progress = await Replays(store).progress(name)
        except ReplayNotFoundError:
            progress = None
        if progress is not None and progress.events_done >= events:
            return progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"replay {name!r} never reached {events} events")


def replay_arguments(name: str, *, rate_limit: str) -> list[str]:
    return [
        "replay",
        "--name",
        name,
        "--stream",
        "orders",
        "--from-offset",
        "0",
        "--to-stream",
        "orders-copy",
        "--rate-limit",
        rate_limit,
        "--batch-size",
        "10",
        "--progress-interval",
        "0",
    ]


async def test_a_replay_killed_midway_resumes_without_duplicates(postgres_dsn: str, store: EventStore) -> None:
    await fill(store, 150)
    process = start_cli(*replay_arguments("copy", rate_limit="40"), dsn=postgres_dsn)
    try:
        await wait_for_progress(store, "copy", 30, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    killed = await Replays(store).progress("copy")
    assert killed.state is ReplayState.RUNNING  # nobody could record the kill
    assert 30 <= killed.events_done < 150
    copied_before = [event async for event in store.read_stream("orders-copy")]
    assert killed.events_done <= len(copied_before) <= killed.events_done + 10  # at most one unrecorded batch

    finished = run_cli(*replay_arguments("copy", rate_limit="100000"), "--output", "json", dsn=postgres_dsn)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert (result["state"], result["events_done"], result["events_total"], result["percent"]) == (
        "succeeded",
        150,
        150,
        100,
    )
    assert result["finished_at"] is not None  # the recorded finish, not null (issue 16 item 14)
    source = [event async for event in store.read_stream("orders")]
    copied = [event async for event in store.read_stream("orders-copy")]
    assert [event.data for event in copied] == [event.data for event in source]
    assert [event.metadata[REPLAYED_FROM_KEY]["offset"] for event in copied] == list(range(150))
    assert [event.event_id for event in copied] == [replayed_event_id("copy", event.event_id) for event in source]
    assert (await Replays(store).progress("copy")).run_epoch == 2


async def test_status_and_cancel_from_another_process(postgres_dsn: str, store: EventStore) -> None:
    await fill(store, 100)
    arguments = replay_arguments("slow", rate_limit="5")
    process = start_cli(*arguments, dsn=postgres_dsn)
    try:
        await wait_for_progress(store, "slow", 7, process)
        status = run_cli("replay", "status", "slow", "--output", "json", dsn=postgres_dsn)
        assert status.returncode == 0, status.stderr
        running = json.loads(status.stdout)
        assert (running["state"], running["events_total"], running["target"]) == ("running", 100, "stream")
        assert 7 <= running["events_done"] < 100
        assert running["events_per_second"] > 0
        assert running["eta_seconds"] > 0
        assert running["started_at"] is not None
        table = run_cli("replay", "status", "slow", dsn=postgres_dsn)
        assert "state" in table.stdout
        assert "running" in table.stdout

        cancel = run_cli("replay", "cancel", "slow", "--output", "json", dsn=postgres_dsn)
        assert cancel.returncode == 0, cancel.stderr
        assert json.loads(cancel.stdout)["cancel_requested"] is True
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 3, stderr
    assert "cancelled" in stdout  # the final progress, as a table
    assert "replay slow: running," in stderr  # progress lines when stderr is not a terminal
    cancelled = await Replays(store).progress("slow")
    assert cancelled.state is ReplayState.CANCELLED
    assert cancelled.events_done < 100

    again = run_cli(*arguments, dsn=postgres_dsn)
    assert again.returncode == 3  # a cancelled replay stays cancelled
    assert (await Replays(store).progress("slow")).events_done == cancelled.events_done
    listed = run_cli("replay", "list", "--output", "json", dsn=postgres_dsn)
    assert listed.returncode == 0, listed.stderr
    assert [(row["name"], row["state"]) for row in json.loads(listed.stdout)] == [("slow", "cancelled")]


async def test_sigterm_interrupts_a_replay_resumably(postgres_dsn: str, store: EventStore) -> None:
    await fill(store, 100)
    process = start_cli(*replay_arguments("stopped", rate_limit="10"), dsn=postgres_dsn)
    try:
        await wait_for_progress(store, "stopped", 12, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, stderr
    assert "interrupted; run it again to resume" in stderr
    paused = await Replays(store).progress("stopped")
    assert (paused.state, paused.error) == (ReplayState.PENDING, "interrupted")
    assert 12 <= paused.events_done < 100
    # A replay that is not running is cancelled at once.
    cancel = run_cli("replay", "cancel", "stopped", "--output", "json", dsn=postgres_dsn)
    assert cancel.returncode == 0, cancel.stderr
    assert json.loads(cancel.stdout)["state"] == "cancelled"


async def test_failures_and_usage_errors(postgres_dsn: str, store: EventStore) -> None:
    await fill(store, 3)
    missing = run_cli("replay", "status", "nothing", dsn=postgres_dsn)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: replay 'nothing' does not exist")
    assert run_cli("replay", "cancel", "nothing", dsn=postgres_dsn).returncode == 1

    no_start = run_cli("replay", "--name", "r", "--stream", "orders", "--to-stream", "copy", dsn=postgres_dsn)
    assert no_start.returncode == 2
    assert "--from-offset or --from-time" in no_start.stderr
    two_targets = run_cli(
        "replay", "--name", "r", "--stream", "orders", "--from-offset", "0", "--to-stream", "a",
        "--to-consumer-group", "b", dsn=postgres_dsn,
    )  # fmt: skip
    assert two_targets.returncode == 2
    projection = run_cli(
        "replay", "--name", "r", "--stream", "orders", "--from-offset", "0", "--to-projection", "totals",
        dsn=postgres_dsn,
    )  # fmt: skip
    assert projection.returncode == 1
    assert "projection 'totals' does not exist" in projection.stderr  # it never ran: nothing to rebuild
    bad_name = run_cli(
        "replay", "--name", "not a name", "--stream", "orders", "--from-offset", "0", "--to-stream", "copy",
        dsn=postgres_dsn,
    )  # fmt: skip
    assert bad_name.returncode == 2  # invalid input
    assert "invalid replay name" in bad_name.stderr
    no_group = run_cli(
        "replay", "--name", "r", "--stream", "orders", "--from-offset", "0", "--to-consumer-group", "nobody",
        dsn=postgres_dsn,
    )  # fmt: skip
    assert no_group.returncode == 1
    assert "does not exist" in no_group.stderr

    from_time = run_cli(
        "replay", "--name", "since", "--stream", "orders", "--from-time", "2000-01-01T00:00:00",
        "--to-stream", "copy", "--output", "json", dsn=postgres_dsn,
    )  # fmt: skip
    assert from_time.returncode == 0, from_time.stderr
    assert json.loads(from_time.stdout)["events_done"] == 3


def run_on_terminal(arguments: list[str], dsn: str) -> tuple[int, str, str]:
    """Run ``sluice ARGUMENTS`` with stderr on a pseudo-terminal: (exit code, what the terminal showed, stdout)."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", *arguments],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            env=cli_environment(dsn),
            cwd=REPOSITORY_ROOT,
        )
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            shown += chunk
        stdout, _ = process.communicate(timeout=30)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    return process.returncode, shown.decode("utf-8", "replace"), stdout


async def test_a_progress_bar_on_a_terminal(postgres_dsn: str, store: EventStore) -> None:
    await fill(store, 30)
    code, shown, stdout = run_on_terminal(replay_arguments("tty", rate_limit="100000"), postgres_dsn)
    assert code == 0, shown
    assert "replay tty" in shown
    assert "100%" in shown
    assert "succeeded" in stdout
