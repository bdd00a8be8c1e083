"""Child processes of the local platform: started with their output in a log file, stopped by process id.

Each child gets its own session, so a Ctrl-C in the terminal reaches only the platform, which then stops the
children in order (workers, operator, control plane, PostgreSQL). Linux's parent-death signal kills a child
whose platform process dies without stopping it (for example after SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from sluice.core.child_processes import parent_death_hook

__all__ = ["LocalProcess", "process_is_running"]

DEFAULT_STOP_GRACE_PERIOD_SECONDS = 15.0


def process_is_running(process_id: int) -> bool:
    """Whether a process with this id exists and is not a zombie."""
    try:
        status = Path(f"/proc/{process_id}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name in parentheses, which may itself contain spaces or parentheses.
    return status.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


class LocalProcess:
    """One child process of the platform, logging to ``log_path``."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log_path: Path,
        environment: Mapping[str, str] | None = None,
        working_directory: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.environment = dict(environment) if environment is not None else None
        self.working_directory = working_directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process_id(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.environment,
                cwd=self.working_directory,
                start_new_session=True,
                # Only one prctl call runs between fork and exec (resolved beforehand in the parent).
                preexec_fn=parent_death_hook(),  # noqa: PLW1509
                close_fds=True,
            )

    def exit_code(self) -> int | None:
        """The exit code once the process has exited, else None (also None before it started)."""
        return None if self._process is None else self._process.poll()

    def log_tail(self, line_count: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-line_count:])

    def stop(self, grace_period_seconds: float = DEFAULT_STOP_GRACE_PERIOD_SECONDS) -> int | None:
        """SIGTERM by process id, SIGKILL after the grace period; reaps the process and returns its exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_period_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode
