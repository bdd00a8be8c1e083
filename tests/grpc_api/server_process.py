"""A Sluice gRPC server in another process (``python -m sluice.rpc``), started and stopped by tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STARTUP_SECONDS = 30.0


class ServerProcess:
    """Runs ``python -m sluice.rpc``; ``restart()`` stops it gracefully and starts it on the same port."""

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
        port_file = self.work_directory / "port"
        port_file.unlink(missing_ok=True)
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
        if self.tokens is not None:
            environment["SLUICE_API_TOKENS"] = self.tokens
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sluice.rpc",
                    "--dsn",
                    self.dsn,
                    "--address",
                    f"127.0.0.1:{self.port}",
                    "--port-file",
                    str(port_file),
                    "--poll-interval-ms",
                    "50",
                    "--grace-seconds",
                    "2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gRPC server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

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
