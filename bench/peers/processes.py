"""Starting and stopping the peers' servers: a free loopback port, a process with its output in a log file, a wait
until its port accepts connections, and a stop by its own process id (never by name)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from sluice_devkit.control_plane import ManagedProcess
from sluice_devkit.tool_processes import build_tool, log_tail

__all__ = ["PeerServerError", "ServerProcess", "build_tool", "free_loopback_port"]

POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 15.0


class PeerServerError(RuntimeError):
    """A reference server could not be built, fetched or started."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class ServerProcess:
    """One server of a peer, started by ``start`` and stopped by its process id on leaving the ``with`` block."""

    def __init__(self, name: str, command: list[str], log_path: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        self._process = ManagedProcess(name, command, log_path)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, *, start_timeout_seconds: float = 90) -> None:
        """Start the process and wait until its port accepts connections."""
        self._process.start(terminate_with_parent=True)
        deadline = time.monotonic() + start_timeout_seconds
        while not accepts_connections(self.port):
            exit_code = self._process.exit_code()
            if exit_code is not None:
                raise PeerServerError(
                    f"{self.name} exited with code {exit_code} while starting; last lines of {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise PeerServerError(
                    f"{self.name} did not accept connections on 127.0.0.1:{self.port} within "
                    f"{start_timeout_seconds:.0f} s; last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self._process.stop(STOP_GRACE_SECONDS)


def run_tool(command: list[str], description: str, log_path: Path) -> None:
    """Run a short command (such as formatting a log folder) to completion, its output appended to a log."""
    with log_path.open("ab") as log_file:
        completed = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, check=False, timeout=300)
    if completed.returncode != 0:
        raise PeerServerError(
            f"{description} failed with exit code {completed.returncode}; last lines of {log_path}:\n"
            f"{log_tail(log_path)}"
        )
