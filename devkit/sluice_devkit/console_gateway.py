"""The demo's gateway: ``sluice serve`` on loopback against the demo's PostgreSQL, so that a new user who runs
``./dev demo`` can open the web console (``/console/``) and the REST API and see the demo's stream, group,
projection and replay there.

It signs in with a token made for this run (written to a file only the user can read, and printed once), and it
listens on 127.0.0.1 on ports the kernel picks. Stopped by process id with the rest of the platform.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sluice_devkit.local_processes import LocalProcess
from sluice_devkit.platform_errors import PlatformError
from sluice_devkit.tool_processes import answers_ok

__all__ = ["DEMO_PRINCIPAL", "ConsoleGateway", "GatewayAddresses"]

DEMO_PRINCIPAL = "demo"
"""The principal the demo's token signs in as (no access policy: it may do everything)."""


@dataclass(frozen=True)
class GatewayAddresses:
    """Where the running gateway answers."""

    http_port: int
    grpc_port: int

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/console/"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/api"


class ConsoleGateway:
    """``sluice serve`` as a child process of the platform, with a token of its own."""

    def __init__(self, database_url: str, state_directory: Path, log_path: Path) -> None:
        self.database_url = database_url
        self.state_directory = state_directory
        self.token = secrets.token_urlsafe(24)
        self.tokens_path = state_directory / "gateway-tokens"
        self.ready_path = state_directory / "gateway-ready.json"
        self.addresses: GatewayAddresses | None = None
        self.process = LocalProcess(
            "gateway",
            [
                sys.executable,
                "-m",
                "sluice.cli",
                "serve",
                f"--dsn={database_url}",
                "--http-address=127.0.0.1:0",
                "--grpc-address=127.0.0.1:0",
                f"--ready-file={self.ready_path}",
                "--grace-seconds=2",
            ],
            log_path=log_path,
            environment=_environment_with(SLUICE_API_TOKENS_FILE=str(self.tokens_path)),
        )

    @property
    def process_id(self) -> int | None:
        return self.process.process_id

    def start(self, timeout_seconds: float = 60.0) -> GatewayAddresses:
        """Start it and wait until it is ready (its /health/ready answers 200), or raise PlatformError."""
        self.state_directory.mkdir(parents=True, exist_ok=True)
        self.ready_path.unlink(missing_ok=True)
        self.tokens_path.touch(mode=0o600)
        self.tokens_path.chmod(0o600)
        self.tokens_path.write_text(f"{DEMO_PRINCIPAL}={self.token}\n", encoding="utf-8")
        self.process.start()
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            exit_code = self.process.exit_code()
            if exit_code is not None:
                raise PlatformError(f"sluice serve exited with {exit_code}:\n{self.process.log_tail()}")
            addresses = self._ready_addresses()
            if addresses is not None and answers_ok(f"http://127.0.0.1:{addresses.http_port}/health/ready"):
                self.addresses = addresses
                return addresses
            time.sleep(0.2)
        self.process.stop()
        raise PlatformError(f"sluice serve was not ready within {timeout_seconds:.0f} s:\n{self.process.log_tail()}")

    def stop(self) -> None:
        self.process.stop()

    def _ready_addresses(self) -> GatewayAddresses | None:
        try:
            ports = json.loads(self.ready_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # not written yet, or being written
        return GatewayAddresses(http_port=int(ports["http_port"]), grpc_port=int(ports["grpc_port"]))


def _environment_with(**variables: str) -> dict[str, str]:
    return {**os.environ, **variables}
