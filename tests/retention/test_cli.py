"""``sluice retention`` against PostgreSQL (run in the test process: tests/cli/in_process.py): set, list, apply,
delete, and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

import sluice
from sluice import EventData
from tests.cli.conftest import run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def json_output(*arguments: str, dsn: str) -> Any:
    result = run_cli(*arguments, "--output", "json", dsn=dsn)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_set_list_apply_and_delete_policies(postgres_dsn: str) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("orders-eu", [EventData("E", b"12345") for _ in range(50)])
        await store.append("payments", [EventData("E", b"1") for _ in range(50)])
    created = json_output(
        "retention",
        "set",
        "orders-*",
        "--max-age",
        "7d",
        "--max-events",
        "10",
        "--window",
        "01:00-04:00",
        dsn=postgres_dsn,
    )
    assert created["pattern"] == "orders-*"
    assert (created["max_age"], created["max_events"], created["window"]) == ("7d", 10, "01:00-04:00")
    assert created["mode"] == "respect-consumers"
    enforced = json_output("retention", "set", "*", "--max-bytes", "1Ki", "--enforce", dsn=postgres_dsn)
    assert (enforced["max_bytes"], enforced["mode"]) == (1024, "enforce")
    listed = json_output("retention", "list", dsn=postgres_dsn)
    assert [policy["pattern"] for policy in listed] == ["*", "orders-*"]

    reports = json_output("retention", "apply", "--stream", "orders-eu", "--now", dsn=postgres_dsn)
    assert reports == [
        {
            "stream": "orders-eu",
            "pruned_events": 40,
            "pruned_bytes": 200,
            "oldest_retained": {"0": 40},
            "held_back_by": [],
            "truncated": [],
            "skipped": None,
        }
    ]
    table = run_cli("retention", "apply", dsn=postgres_dsn)
    assert table.returncode == 0, table.stderr
    assert "payments" in table.stdout

    deleted = run_cli("retention", "delete", "orders-*", dsn=postgres_dsn)
    assert deleted.returncode == 0, deleted.stderr
    missing = run_cli("retention", "delete", "orders-*", dsn=postgres_dsn)
    assert missing.returncode == 1
    assert "no retention policy" in missing.stderr


async def test_bad_input_is_refused_with_a_clear_message(postgres_dsn: str) -> None:
    for arguments, message in (
        (("set", "orders-*"), "at least one of"),
        (("set", "orders-*", "--max-age", "7 days"), "invalid duration"),
        (("set", "orders-*", "--max-bytes", "lots"), "invalid byte size"),
        (("set", "orders-*", "--max-events", "5", "--window", "01:00"), "HH:MM-HH:MM"),
        (("set", "or*ders", "--max-events", "5"), "invalid retention pattern"),
    ):
        result = run_cli("retention", *arguments, dsn=postgres_dsn)
        assert result.returncode == 2, (arguments, result.stderr)  # invalid input
        assert message in result.stderr, (arguments, result.stderr)
    assert json_output("retention", "list", dsn=postgres_dsn) == []
