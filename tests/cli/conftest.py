"""Running the ``sluice`` command as a real subprocess, with a clean ``SLUICE_*`` environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sinks.receiver import Receiver, running_receiver

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def cli_environment(dsn: str | None = None, **settings: str) -> dict[str, str]:
    """The test process's environment without SLUICE_* variables, plus ``settings``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    if dsn is not None:
        environment["SLUICE_DSN"] = dsn
    environment.update(settings)
    return environment


def run_cli(
    *arguments: str, dsn: str | None = None, stdin: str | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sluice.cli ARGUMENTS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_environment(dsn, **settings),
        cwd=REPOSITORY_ROOT,
        timeout=60,
        check=False,
    )


def start_cli(*arguments: str, dsn: str | None = None, **settings: str) -> subprocess.Popen[str]:
    """Start ``python -m sluice.cli ARGUMENTS`` in the background (stop it and wait for it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(dsn, **settings),
        cwd=REPOSITORY_ROOT,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
