"""Running the ``sluice`` command with a clean ``SLUICE_*`` environment: in the test process (``run_cli``,
tests/cli/in_process.py: most tests), or as a real subprocess for what only a process shows (signals, the
installed script's exit codes, pipes: ``start_cli``, ``run_cli_process``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.in_process import CliResult, invoke_cli
from tests.sinks.receiver import Receiver, running_receiver

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
INSTALLED_SCRIPT = Path(sys.executable).with_name("sluice")
"""The console script the package installs next to the interpreter (``[project.scripts]``)."""


def cli_environment(dsn: str | None = None, **settings: str) -> dict[str, str]:
    """The test process's environment without SLUICE_* variables, plus ``settings``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    if dsn is not None:
        environment["SLUICE_DSN"] = dsn
    environment.update(settings)
    return environment


def run_cli(*arguments: str, dsn: str | None = None, stdin: str | None = None, **settings: str) -> CliResult:
    """Run ``sluice ARGUMENTS`` to completion in this process."""
    return invoke_cli(*arguments, dsn=dsn, stdin=stdin, **settings)


def run_cli_process(
    *arguments: str, dsn: str | None = None, stdin: str | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``sluice`` script with ARGUMENTS to completion, in a process of its own."""
    return subprocess.run(
        [str(INSTALLED_SCRIPT), *arguments],
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
