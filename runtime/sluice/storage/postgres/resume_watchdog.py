"""The watchdog of a paused embedded PostgreSQL (``EmbeddedPostgres.pause()``, the fault tests' hung database).

A SIGSTOPped postmaster does not act on its parent-death SIGINT until it is continued, so a paused server whose
starter was killed would stay stopped, holding its port, for good. The watchdog is a shell in a session of its
own that gets SIGTERM when the starter dies and then continues the server's processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess

from sluice.core.child_processes import parent_death_hook

_RESUME_ON_TERM = 'trap \'kill -CONT "$@" 2>/dev/null; kill "$sleeper" 2>/dev/null; exit 0\' TERM; echo ready; ' + (
    'while :; do sleep 3600 </dev/null >/dev/null & sleeper=$!; wait "$sleeper"; done'
)
"""A shell that says ``ready`` once its trap is set, sleeps until SIGTERM, then sends SIGCONT to the process ids
it was given."""


def resume_when_parent_dies(process_ids: list[int]) -> subprocess.Popen[bytes]:
    """A watchdog for a paused server: when the process that paused it dies, SIGCONT the postmaster and its
    backends. A stopped process does not act on its parent-death SIGINT until it is continued, so without
    this a paused server whose test process was killed would stay stopped (and hold its port) forever."""
    command = ["sh", "-c", _RESUME_ON_TERM, "sh", *map(str, process_ids)]
    if setpriv := shutil.which("setpriv"):
        watchdog = subprocess.Popen(
            [setpriv, "--pdeathsig", "TERM", "--", *command], stdout=subprocess.PIPE, start_new_session=True
        )
    else:
        watchdog = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            preexec_fn=parent_death_hook(signal.SIGTERM),  # noqa: PLW1509
            start_new_session=True,
        )
    # Wait until the trap is set: a SIGTERM before it (this process killed right after pause() returned)
    # would end the shell without continuing the server.
    assert watchdog.stdout is not None
    with watchdog.stdout:
        watchdog.stdout.readline()
    return watchdog


def stop_watchdog(watchdog: subprocess.Popen[bytes] | None) -> None:
    """The server was resumed or stopped: end the watchdog without running its trap."""
    if watchdog is None or watchdog.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(watchdog.pid, signal.SIGKILL)  # its own group, sleep included; SIGKILL: the trap does not run
    watchdog.wait()
