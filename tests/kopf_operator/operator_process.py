"""Running the operator as the real process (``python -m sluice_operator``) against the test control plane.

Each test gets its own operator process watching its namespace, started with a short resync interval so
drift repair and lag polling show within seconds, and stopped by its process id (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.custom_resources.manifests import REPOSITORY_ROOT

READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
RESYNC_SECONDS = "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OperatorProcess:
    """One ``python -m sluice_operator --namespace NS`` process, logging to a file."""

    def __init__(
        self,
        *,
        kubeconfig_path: Path,
        namespace: str,
        default_dsn: str,
        log_path: Path,
        image: str | None = None,
        metrics_port: int = 0,
    ) -> None:
        self.kubeconfig_path = kubeconfig_path
        self.namespace = namespace
        self.default_dsn = default_dsn
        self.log_path = log_path
        self.image = image
        self.metrics_port = metrics_port
        """Where it serves /metrics; 0 (the default): not served."""
        self.liveness_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        environment = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig_path),
            "SLUICE_DSN": self.default_dsn,
            "SLUICE_OPERATOR_RESYNC_SECONDS": RESYNC_SECONDS,
            "SLUICE_OPERATOR_DATABASE_TIMEOUT_SECONDS": "5",
        }
        if self.image is not None:
            environment["SLUICE_IMAGE"] = self.image
        command = [
            sys.executable,
            "-m",
            "sluice_operator",
            "--namespace",
            self.namespace,
            "--liveness-port",
            str(self.liveness_port),
            "--metrics-port",
            str(self.metrics_port),
            "--bind-address",
            "127.0.0.1",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=REPOSITORY_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_live()
        except BaseException:
            self.stop()  # never leave a process running (and unwaited) behind a failed start
            raise
        return self

    def _wait_until_live(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(f"the operator exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"the operator's liveness endpoint did not answer:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash or a node loss does."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period; the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
