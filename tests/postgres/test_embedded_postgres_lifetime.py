"""An embedded PostgreSQL never outlives the process that started it, even when that process is SIGKILLed
(Linux's parent-death signal asks the server for a fast shutdown)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluice.storage.postgres.embedded import EmbeddedPostgres
from sluice.storage.postgres.resume_watchdog import resume_when_parent_dies

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STARTER = """
import sys, time
from sluice.storage.postgres.embedded import EmbeddedPostgres
from sluice.storage.postgres.resume_watchdog import resume_when_parent_dies
server = EmbeddedPostgres()
server.start()
print(server.pid, flush=True)
time.sleep(300)
"""


def is_running(process_id: int) -> bool:
    try:
        state = Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_server_stops_when_its_starter_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        server_process_id = int(starter.stdout.readline())
        assert is_running(server_process_id)
    finally:
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=10)
        if starter.stdout is not None:
            starter.stdout.close()
    deadline = time.monotonic() + 20
    while is_running(server_process_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    outlived = is_running(server_process_id)
    if outlived:
        os.kill(server_process_id, signal.SIGINT)  # do not leave it behind when the test fails
    assert not outlived, "postgres outlived the process that started it"


def test_a_server_stopped_normally_is_gone() -> None:
    with EmbeddedPostgres() as server:
        process_id = server.pid
        assert process_id is not None
        assert is_running(process_id)
    assert server.pid is None
    assert not is_running(process_id)


PAUSING_STARTER = STARTER.replace("print(server.pid", "server.pause()\nprint(server.pid")


def test_a_paused_server_stops_when_its_starter_is_killed() -> None:
    """A SIGSTOPped postmaster does not act on its parent-death SIGINT until continued: the watchdog that
    ``pause()`` starts continues it when the starter dies, so a killed fault test leaves nothing behind."""
    starter = subprocess.Popen([sys.executable, "-c", PAUSING_STARTER], stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        server_process_id = int(starter.stdout.readline())
        assert is_running(server_process_id)
        assert process_state(server_process_id) == "T", "pause() stops the postmaster"
    finally:
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=10)
        if starter.stdout is not None:
            starter.stdout.close()
    deadline = time.monotonic() + 20
    while is_running(server_process_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    outlived = is_running(server_process_id)
    if outlived:  # do not leave it behind when the test fails: its backends were stopped too
        for process_id in (server_process_id, *children_of(server_process_id)):
            os.kill(process_id, signal.SIGCONT)
        os.kill(server_process_id, signal.SIGINT)
    assert not outlived, "a paused postgres outlived the process that started it"


def children_of(process_id: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == process_id:
            children.append(int(stat.parent.name))
    return children


def process_state(process_id: int) -> str:
    return Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_the_resume_watchdog_is_armed_when_it_is_returned() -> None:
    """The parent-death SIGTERM may reach the watchdog the moment ``pause()`` returns (the test process
    killed right then): the watchdog must already have its trap set, or it dies without continuing the
    server. A stopped ``sleep`` stands in for the paused postmaster; SIGTERM is sent at once."""
    target = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(target.pid, signal.SIGSTOP)
        watchdog = resume_when_parent_dies([target.pid])
        os.kill(watchdog.pid, signal.SIGTERM)  # what the parent's death sends, at the earliest instant
        watchdog.wait(timeout=10)
        deadline = time.monotonic() + 5
        while process_state(target.pid) == "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process_state(target.pid) != "T", "the watchdog died before it could continue the server"
    finally:
        target.kill()
        target.wait(timeout=10)
