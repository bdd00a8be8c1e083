"""What the dev kit's runners of built tools (KEDA, Argo CD, the demo's gateway) share: building a tool with its
script, asking a loopback endpoint whether it answers, and waiting until a started process is ready with the end
of its log in the error when it is not."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from sluice_devkit.managed_process import ManagedProcess

__all__ = ["POLL_SECONDS", "answers_ok", "build_tool", "log_tail", "wait_until_ready"]

POLL_SECONDS = 0.2


def build_tool(build_script: Path, *, timeout_seconds: float | None = None) -> Path:
    """Run a build script (instant once built) and return the folder it prints on its last line."""
    completed = subprocess.run(
        ["bash", str(build_script)], stdout=subprocess.PIPE, check=False, timeout=timeout_seconds
    )
    output_lines = completed.stdout.decode().strip().splitlines()
    if completed.returncode != 0 or not output_lines:
        raise RuntimeError(f"{build_script} failed with exit code {completed.returncode}")
    return Path(output_lines[-1])


def answers_ok(url: str) -> bool:
    """Whether an http URL on loopback answers 200 within 2 seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback http URL made by the caller
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def log_tail(path: Path, line_count: int = 40) -> str:
    """The last lines of a log file, or "(no log)"."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-line_count:])
    except OSError:
        return "(no log)"


def wait_until_ready(
    deadline: float,
    process: ManagedProcess,
    ready: Callable[[], bool],
    description: str,
    *,
    error_type: Callable[[str], Exception],
    details: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``ready`` until it holds; raise the process's own error if it exits, or ``error_type`` (with
    ``details()`` and the end of its log) at the deadline."""
    while True:
        process.raise_if_exited()
        if ready():
            return
        if time.monotonic() > deadline:
            raise error_type(
                f"{description} was not ready before the start timeout{details()}; last lines of "
                f"{process.log_path}:\n{log_tail(process.log_path)}"
            )
        time.sleep(POLL_SECONDS)
