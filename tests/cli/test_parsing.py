"""Pure parsing of the command line (click's CliRunner, no database): settings from the
environment, usage errors and their exit codes, and the small parsers the commands share."""

from __future__ import annotations

import re
import uuid

import click
import pytest
from click.testing import CliRunner

from sluice.cli import main
from sluice.cli.append import parse_expected_offset
from sluice.cli.groups import parse_target
from sluice.cli.input_events import parse_event, parse_lines
from sluice.cli.settings import environment_variable
from sluice.core.errors import InvalidArgumentError
from sluice.core.events import ExpectedOffset
from sluice.store.values.consumer_group_options import StartFrom


def test_every_consume_flag_of_the_contract_reads_its_environment_variable() -> None:
    command = main.commands["consume"]
    variables = {parameter.name: parameter.envvar for parameter in command.params}  # type: ignore[attr-defined]
    for flag in [
        "stream",
        "group",
        "sink",
        "handler",
        "consumer_id",
        "commit_strategy",
        "commit_interval",
        "batch_size",
        "session_timeout",
        "start_from",
        "max_attempts",
        "dead_letter_stream",
        "http_port",
        "dsn",
    ]:
        assert variables[flag] == "SLUICE_" + flag.upper()
    assert variables["schema_name"] == "SLUICE_SCHEMA"
    assert environment_variable("--batch-size") == "SLUICE_BATCH_SIZE"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--stream", "s", "--group", "g"], "give exactly one of --sink URL or --handler"),
        (["--stream", "s", "--group", "g", "--sink", "http://x/", "--handler", "m:f"], "give exactly one"),
        (["--group", "g", "--sink", "http://x/"], "Missing option '--stream'"),
        (["--stream", "s", "--group", "g", "--sink", "http://x/", "--start-from", "middle"], "'middle' is not one of"),
        (["--stream", "s", "--group", "g", "--sink", "http://x/", "--http-port", "70000"], "--http-port"),
        (["--stream", "s", "--group", "g", "--sink", "http://x/"], "give --dsn or set SLUICE_DSN"),
        (["--stream", "s", "--group", "g" * 200, "--sink", "http://x/", "--dsn", "memory://"], "invalid stream name"),
    ],
)
def test_consume_usage_errors_exit_2(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["consume", *arguments], env={"SLUICE_DSN": None})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_settings_come_from_the_environment_and_flags_win() -> None:
    runner = CliRunner()
    environment = {"SLUICE_DSN": "memory://", "SLUICE_OUTPUT": "json"}
    from_environment = runner.invoke(main, ["streams", "list"], env=environment)
    assert (from_environment.exit_code, from_environment.output.strip()) == (0, "[]")
    flag_wins = runner.invoke(main, ["streams", "list", "--output", "table"], env=environment)
    assert (flag_wins.exit_code, flag_wins.output.strip()) == (0, "(none)")
    bad_schema = runner.invoke(main, ["streams", "list", "--dsn", "memory://", "--schema", "Bad;Name"])
    assert bad_schema.exit_code == 2  # invalid input
    assert "invalid schema name" in bad_schema.output


def test_expected_offsets_and_reset_targets() -> None:
    assert parse_expected_offset(None) is None
    assert parse_expected_offset("7") == 7
    assert parse_expected_offset("no_stream") is ExpectedOffset.NO_STREAM
    with pytest.raises(click.BadParameter):
        parse_expected_offset("-1")
    assert parse_target("earliest").start_from is StartFrom.EARLIEST
    assert parse_target("offset:12").offset == 12
    target = parse_target("time:2026-01-02T03:04:05")
    assert target.time is not None
    assert target.time.tzinfo is not None  # no zone given: UTC
    for bad in ("offset:x", "latest:1", "time:", "soon"):
        with pytest.raises(click.BadParameter):
            parse_target(bad)


def test_events_from_json_lines() -> None:
    event_id = uuid.uuid4()
    envelope = parse_event(
        f'{{"type": "A", "data": [1], "metadata": {{"k": "v"}}, "id": "{event_id}"}}', event_type=None, where="x"
    )
    assert (envelope.event_type, envelope.data, envelope.metadata, envelope.event_id) == (
        "A",
        [1],
        {"k": "v"},
        event_id,
    )
    plain = parse_event('{"type": "not an envelope"}', event_type="B", where="x")
    assert (plain.event_type, plain.data) == ("B", {"type": "not an envelope"})
    for text, message in [
        ('{"type": "A"}', "expected an envelope"),
        ('{"type": "A", "data": 1, "extra": 2}', "unknown envelope keys ['extra']"),
        ('{"type": "", "data": 1}', "'type' must be a non-empty string"),
        ('{"type": "A", "data": 1, "id": "nope"}', "'id' must be a UUID"),
        ('{"type": "A", "data": 1, "metadata": [1]}', "'metadata' must be an object"),
    ]:
        with pytest.raises(InvalidArgumentError, match=re.escape(message)):
            parse_event(text, event_type=None, where="line 1")
    with pytest.raises(InvalidArgumentError, match="stdin holds no events"):
        parse_lines(["", "  "], event_type="A", source="stdin")
