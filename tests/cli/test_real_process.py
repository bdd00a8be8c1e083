"""The installed ``sluice`` script as a real process, for what only a process shows: events piped into
its stdin, JSON lines read from its stdout, and its exit codes with one-line errors on stderr. (Signals:
``tail`` in test_commands.py and ``consume`` in test_consume.py; every other command runs in-process.)"""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import INSTALLED_SCRIPT, run_cli_process

pytestmark = pytest.mark.slow


async def test_the_installed_script_reads_pipes_and_exits_with_its_codes(postgres_dsn: str) -> None:
    assert INSTALLED_SCRIPT.is_file(), f"no console script at {INSTALLED_SCRIPT}"
    piped_in = run_cli_process(
        "append", "orders", "--type", "OrderPlaced", "--output", "json", dsn=postgres_dsn, stdin='{"n": 1}\n{"n": 2}\n'
    )
    assert piped_in.returncode == 0, piped_in.stderr
    assert json.loads(piped_in.stdout)["appended"] == 2

    piped_out = run_cli_process("read", "orders", "--output", "json", dsn=postgres_dsn)
    assert piped_out.returncode == 0, piped_out.stderr
    assert [json.loads(line)["data"] for line in piped_out.stdout.splitlines()] == [{"n": 1}, {"n": 2}]

    missing = run_cli_process("read", "nowhere", dsn=postgres_dsn)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: stream 'nowhere' does not exist")
    usage = run_cli_process("streams", "list")
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines()[-1] == "Error: give --dsn or set SLUICE_DSN"
