"""Processes the dev kit starts on loopback: free ports, a process logging to a file and stopped by its id,
and waiting until its endpoint answers.

``LocalControlPlane`` runs etcd, kube-apiserver and kube-controller-manager as ``ManagedProcess`` objects; the
local node, KEDA, Argo CD and the git server run theirs the same way. A process that exits while it starts, or
does not answer in time, fails with ``ControlPlaneStartError`` and the end of its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from sluice.core.child_processes import parent_death_hook
from sluice_devkit.free_ports import free_loopback_ports

__all__ = [
    "LOOPBACK_ADDRESS",
    "ControlPlaneStartError",
    "ManagedProcess",
    "answers_ok",
    "free_loopback_ports",
    "wait_for_answer",
]

LOOPBACK_ADDRESS = "127.0.0.1"
LOG_TAIL_LINE_COUNT = 40
POLL_INTERVAL_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 2.0


class ControlPlaneStartError(RuntimeError):
    """A control-plane process exited, or did not become ready in time, while starting."""


def _log_tail(log_path: Path, line_count: int = LOG_TAIL_LINE_COUNT) -> str:
    """The last lines of a process's log file (for an error saying why it did not start)."""
    try:
        with log_path.open("rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - 64 * 1024))
            content = log_file.read().decode("utf-8", errors="replace")
    except OSError as error:
        return f"(could not read {log_path}: {error})"
    return "\n".join(content.splitlines()[-line_count:])


class ManagedProcess:
    """One control-plane process: started with its output in a log file, stopped by its process id."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process_id(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, *, terminate_with_parent: bool, environment: Mapping[str, str] | None = None) -> None:
        pre_exec_hook = parent_death_hook() if terminate_with_parent else None
        with self.log_path.open("ab") as log_file:
            log_file.write(f"# started: {' '.join(self.command)}\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches the test process, which then stops these.
                start_new_session=True,
                # Only one prctl call runs between fork and exec (resolved beforehand in the parent).
                preexec_fn=pre_exec_hook,  # noqa: PLW1509
                close_fds=True,
            )

    def exit_code(self) -> int | None:
        """The exit code if the process has exited, else None (also None if it never started)."""
        return None if self._process is None else self._process.poll()

    def raise_if_exited(self) -> None:
        exit_code = self.exit_code()
        if exit_code is not None:
            raise ControlPlaneStartError(
                f"{self.name} exited with code {exit_code} while the control plane was starting; "
                f"last lines of {self.log_path}:\n{_log_tail(self.log_path)}"
            )

    def stop(self, grace_period_seconds: float) -> None:
        """SIGTERM, then SIGKILL once the grace period is over; always reaps the process."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_period_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()


def answers_ok(url: str, *, context: ssl.SSLContext | None, timeout_seconds: float) -> bool:
    """Whether ``url`` (http or https on loopback) answers 200 within ``timeout_seconds``."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - fixed http(s) loopback URLs
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds, context=context) as response:  # noqa: S310
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def wait_for_answer(
    process: ManagedProcess,
    deadline: float,
    url: str,
    context: ssl.SSLContext | None,
    description: str,
) -> None:
    """Poll ``url`` until it answers 200, failing early if ``process`` exits."""
    while True:
        process.raise_if_exited()
        request_timeout = min(REQUEST_TIMEOUT_SECONDS, max(0.1, deadline - time.monotonic()))
        if answers_ok(url, context=context, timeout_seconds=request_timeout):
            return
        if time.monotonic() > deadline:
            process.raise_if_exited()
            raise ControlPlaneStartError(
                f"{description} was not ready before the start timeout; "
                f"last lines of {process.log_path}:\n{_log_tail(process.log_path)}"
            )
        time.sleep(POLL_INTERVAL_SECONDS)
