"""The operator as the platform runs it: ``python -m sluice_operator --all-namespaces`` as a child process,
on free loopback ports, with a short resync so status and lag refresh within seconds."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sluice_devkit.kubelet_stand_in import free_loopback_port
from sluice_devkit.local_processes import LocalProcess
from sluice_devkit.platform_errors import PlatformError

__all__ = ["start_operator"]

LIVENESS_TIMEOUT_SECONDS = 60.0
RESYNC_SECONDS = "2"


class OperatorProcess(LocalProcess):
    """The operator process and the ports of its endpoints."""

    def __init__(self, *, kubeconfig_path: Path, default_database_url: str, log_path: Path) -> None:
        self.liveness_port = free_loopback_port()
        self.metrics_port = free_loopback_port()
        environment = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig_path),
            "SLUICE_DSN": default_database_url,
            "SLUICE_OPERATOR_RESYNC_SECONDS": RESYNC_SECONDS,
            "SLUICE_OPERATOR_DATABASE_TIMEOUT_SECONDS": "5",
        }
        command = [
            sys.executable,
            "-m",
            "sluice_operator",
            "--all-namespaces",
            "--liveness-port",
            str(self.liveness_port),
            "--metrics-port",
            str(self.metrics_port),
            "--bind-address",
            "127.0.0.1",
        ]
        super().__init__("operator", command, log_path=log_path, environment=environment)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def wait_until_live(self) -> None:
        """Wait for kopf's liveness endpoint; PlatformError with the log tail if the operator exits."""
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        deadline = time.monotonic() + LIVENESS_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            exit_code = self.exit_code()
            if exit_code is not None:
                raise PlatformError(f"the operator exited with {exit_code}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise PlatformError(
            f"the operator did not answer {url} in {LIVENESS_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail()}"
        )


def start_operator(*, kubeconfig_path: Path, default_database_url: str, log_path: Path) -> OperatorProcess:
    """Start the operator; the caller stops it (also when waiting for it fails)."""
    operator = OperatorProcess(
        kubeconfig_path=kubeconfig_path, default_database_url=default_database_url, log_path=log_path
    )
    operator.start()
    return operator
