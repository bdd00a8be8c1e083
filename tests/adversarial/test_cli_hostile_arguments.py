"""Hostile command lines end with one ``Error:`` line and exit code 2, never a traceback: arguments holding
bytes that are not UTF-8 (the shell hands Python surrogate escapes), JSON numbers longer than Python
converts, and a DSN that is not a URL."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from sluice.cli import main

LONG_NUMBER = "1" + "0" * 5_000


@pytest.mark.parametrize(
    ("arguments", "stdin"),
    [
        (["append", "orders", "--type", "A", "--data", "{}", "--partition-key", "\udcff"], None),
        (["append", "orders", "--type", "A", "--data", LONG_NUMBER], None),
        (["append", "orders", "--type", "A"], LONG_NUMBER + "\n"),
        (["enqueue", "jobs"], LONG_NUMBER + "\n"),
        (["read", "orders", "--dsn", "postgresql://[::1"], None),
    ],
    ids=["partition key not UTF-8", "--data long number", "stdin long number", "enqueue long number", "bad DSN"],
)
async def test_refused_with_one_line(arguments: list[str], stdin: str | None) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, main, arguments, input=stdin, env={"SLUICE_DSN": "memory://", "SLUICE_OUTPUT": "json"}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error:")], result.output
