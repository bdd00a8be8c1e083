"""A Git repository served read-only on loopback by ``git daemon``: what Argo CD syncs from in the tests.

``LocalGitRepository`` creates a repository (branch ``main``) in a work folder, commits files into it
(``commit``), and serves it as ``git://127.0.0.1:<port>/<name>`` (Debian's git; nothing leaves the machine).
``stop()`` stops the daemon by process id.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from sluice_devkit.managed_process import LOOPBACK_ADDRESS, ManagedProcess, free_loopback_ports
from sluice_devkit.platform_errors import PlatformError
from sluice_devkit.started_once import StartedOnce

__all__ = ["GitRepositoryError", "LocalGitRepository"]

DEFAULT_READY_TIMEOUT_SECONDS = 30.0
STOP_GRACE_PERIOD_SECONDS = 5.0
GIT_TIMEOUT_SECONDS = 60


class GitRepositoryError(PlatformError):
    """A git command failed, or git daemon did not start."""


class LocalGitRepository(StartedOnce):
    """A repository under ``work_directory/<name>`` served by ``git daemon`` on 127.0.0.1; a context manager."""

    def __init__(self, work_directory: Path, *, name: str = "deploy", terminate_with_parent: bool = True) -> None:
        self.work_directory = Path(work_directory).absolute()
        self.name = name
        self.terminate_with_parent = terminate_with_parent
        self.checkout = self.work_directory / name
        self.log_path = self.work_directory / "git-daemon.log"
        self.port: int | None = None
        self._daemon: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The URL Argo CD clones (``git://127.0.0.1:<port>/<name>``)."""
        if self.port is None:
            raise RuntimeError("the repository is not served yet: call start()")
        return f"git://{LOOPBACK_ADDRESS}:{self.port}/{self.name}"

    def start(self) -> Self:
        """Create the (empty) repository and serve it; returns once git daemon accepts connections."""
        if shutil.which("git") is None:
            raise GitRepositoryError("git is not on PATH; install Debian's git (./dev test does)")
        self.checkout.mkdir(parents=True, exist_ok=True)
        self._git("init", "--quiet", "--initial-branch=main")
        (self.port,) = free_loopback_ports(1)
        daemon = ManagedProcess(
            "git-daemon",
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--informative-errors",
                f"--base-path={self.work_directory}",
                f"--listen={LOOPBACK_ADDRESS}",
                f"--port={self.port}",
                "--verbose",
                str(self.work_directory),
            ],
            self.log_path,
        )
        self._daemon = daemon
        atexit.register(self.stop)
        daemon.start(terminate_with_parent=self.terminate_with_parent, environment=self._environment())
        deadline = time.monotonic() + DEFAULT_READY_TIMEOUT_SECONDS
        while not _accepts(self.port):
            if daemon.exit_code() is not None or time.monotonic() > deadline:
                self.stop()
                raise GitRepositoryError(f"git daemon did not start; see {self.log_path}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Stop git daemon by process id. Safe to call more than once."""
        if self._daemon is not None:
            self._daemon.stop(STOP_GRACE_PERIOD_SECONDS)
        atexit.unregister(self.stop)

    def copy_tree(self, source: Path, destination: str) -> None:
        """Copy the folder ``source`` to ``destination`` (relative) in the checkout, replacing what was there."""
        target = self.checkout / destination
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)

    def write(self, files: Mapping[str, str]) -> None:
        """Write text files (relative path → content) into the checkout."""
        for relative, content in files.items():
            path = self.checkout / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")

    def remove(self, relative: str) -> None:
        """Delete a file of the checkout."""
        (self.checkout / relative).unlink()

    def commit(self, message: str) -> str:
        """Commit everything in the checkout; returns the new commit's id."""
        self._git("add", "--all")
        self._git("commit", "--quiet", "--allow-empty", f"--message={message}")
        return self._git("rev-parse", "HEAD").strip()

    def _environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Sluice tests",
            "GIT_AUTHOR_EMAIL": "tests@sluice.invalid",
            "GIT_COMMITTER_NAME": "Sluice tests",
            "GIT_COMMITTER_EMAIL": "tests@sluice.invalid",
        }

    def _git(self, *arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments],
            cwd=self.checkout,
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0:
            raise GitRepositoryError(f"git {' '.join(arguments)} failed: {completed.stderr.strip()}")
        return completed.stdout


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK_ADDRESS, port), timeout=1):
            return True
    except OSError:
        return False
