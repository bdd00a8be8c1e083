"""A Sluice gateway in another process (``sluice serve``, as a pod runs it), started and stopped by tests
that talk to its gRPC port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

STARTUP_SECONDS = 30.0


class ServerProcess:
    """Runs ``sluice serve``; ``restart()`` stops it gracefully and starts it on the same gRPC port."""

    def __init__(self, dsn: str, work_directory: Path, *, tokens: str | None = None) -> None:
        self.dsn = dsn
        self.work_directory = work_directory
        self.tokens = tokens
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = work_directory / "server.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        ready_file = self.work_directory / "ready.json"
        ready_file.unlink(missing_ok=True)
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
        if self.tokens is not None:
            environment["SLUICE_API_TOKENS"] = self.tokens
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluice.cli",
                    "serve",
                    "--dsn",
                    self.dsn,
                    "--grpc-address",
                    f"127.0.0.1:{self.port}",
                    "--http-address",
                    "127.0.0.1:0",
                    "--ready-file",
                    str(ready_file),
                    "--poll-interval",
                    "0.05",
                    "--grace-seconds",
                    "2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not ready_file.exists():
            self._check_starting(deadline)
            time.sleep(0.05)
        ports = json.loads(ready_file.read_text(encoding="utf-8"))
        self.port = int(ports["grpc_port"])
        while not _answers_ready(int(ports["http_port"])):  # the store is open: the API is served
            self._check_starting(deadline)
            time.sleep(0.05)

    def _check_starting(self, deadline: float) -> None:
        assert self.process is not None
        if self.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"sluice serve did not start:\n{self.log_path.read_text(errors='replace')}")

    def stop(self) -> int:
        """SIGTERM (graceful shutdown) and wait; returns the exit code."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def restart(self) -> None:
        self.stop()
        self.start()


def _answers_ready(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health/ready", timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False
