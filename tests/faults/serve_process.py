"""``sluice serve`` as a real subprocess (gRPC and REST on loopback ports it picks), started and stopped
by the fault tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0


class ServeProcess:
    """``python -m sluice.cli serve`` on 127.0.0.1 ports 0; ``grpc_target`` and ``http_url`` once started."""

    def __init__(self, dsn: str, work_directory: Path, *, grace_seconds: float = 2.0) -> None:
        self.dsn = dsn
        self.grace_seconds = grace_seconds
        self.ready_file = work_directory / "serve-ready.json"
        self.log_path = work_directory / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.grpc_port = 0
        self.http_port = 0

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
        self.ready_file.unlink(missing_ok=True)
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
                    "127.0.0.1:0",
                    "--http-address",
                    "127.0.0.1:0",
                    "--grace-seconds",
                    str(self.grace_seconds),
                    "--ready-file",
                    str(self.ready_file),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=REPOSITORY,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.ready_file.exists() or not self.ready_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sluice serve did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        ports = json.loads(self.ready_file.read_text())
        self.grpc_port, self.http_port = ports["grpc_port"], ports["http_port"]

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, within: float) -> tuple[int | None, float]:
        """SIGTERM; the exit code (None: still running after ``within`` seconds, then SIGKILLed) and
        how long it took to exit."""
        assert self.process is not None
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            code = None
            self.process.kill()
            self.process.wait()
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate(within=15)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
