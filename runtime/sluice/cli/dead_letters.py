"""``sluice dead-letters list|redrive|purge QUEUE``: inspect a queue's dead letters, put them back, delete them."""

from __future__ import annotations

from typing import Any

import click

from sluice.cli.output import emit_object, emit_rows
from sluice.cli.running import open_store, run
from sluice.cli.settings import output_setting, require_dsn, store_settings
from sluice.messages import DeadLetter

DEAD_LETTER_COLUMNS = ["dead_letter_id", "message_id", "event_type", "attempts", "dead_lettered_at", "last_failure"]


def dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    return {
        "dead_letter_id": letter.dead_letter_id,
        "message_id": letter.message_id,
        "event_type": letter.event_type,
        "attempts": letter.attempts,
        "enqueued_at": letter.enqueued_at,
        "dead_lettered_at": letter.dead_lettered_at,
        "correlation_id": letter.correlation_id,
        "last_failure": letter.failures[-1].reason if letter.failures else None,
        "failures": [
            {"attempt": failure.attempt, "at": failure.at, "reason": failure.reason} for failure in letter.failures
        ],
        "data": letter.data if not isinstance(letter.data, bytes) else None,
    }


def _selection(dead_letter_ids: tuple[int, ...], every: bool) -> list[int] | None:
    if bool(dead_letter_ids) == every:
        raise click.UsageError("name dead letters with --id (repeatable), or give --all")
    return None if every else list(dead_letter_ids)


@click.group("dead-letters")
def dead_letters() -> None:
    """A queue's dead letters: messages that used up their delivery attempts."""


@dead_letters.command("list")
@click.argument("queue")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@store_settings
@output_setting
def list_dead_letters(*, queue: str, limit: int, dsn: str | None, schema_name: str, output: str) -> None:
    """List QUEUE's dead letters, oldest first, with their last failure."""
    database = require_dsn(dsn)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            letters = await store.dead_letters(queue, limit=limit)
        emit_rows([dead_letter_record(letter) for letter in letters], DEAD_LETTER_COLUMNS, output)

    run(body())


@dead_letters.command()
@click.argument("queue")
@click.option("--id", "dead_letter_ids", type=click.IntRange(min=1), multiple=True, help="A dead letter to redrive.")
@click.option("--all", "every", is_flag=True, help="Redrive every dead letter of QUEUE.")
@store_settings
@output_setting
def redrive(
    *, queue: str, dead_letter_ids: tuple[int, ...], every: bool, dsn: str | None, schema_name: str, output: str
) -> None:
    """Put dead letters back on QUEUE as new messages (delivery history kept, attempts start again)."""
    selection = _selection(dead_letter_ids, every)
    database = require_dsn(dsn)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            message_ids = await store.redrive_dead_letters(queue, dead_letter_ids=selection)
        emit_object({"queue": queue, "redriven": len(message_ids), "message_ids": message_ids}, output)

    run(body())


@dead_letters.command()
@click.argument("queue")
@click.option("--id", "dead_letter_ids", type=click.IntRange(min=1), multiple=True, help="A dead letter to delete.")
@click.option("--all", "every", is_flag=True, help="Delete every dead letter of QUEUE.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@store_settings
@output_setting
def purge(
    *,
    queue: str,
    dead_letter_ids: tuple[int, ...],
    every: bool,
    yes: bool,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Delete dead letters of QUEUE for good."""
    selection = _selection(dead_letter_ids, every)
    database = require_dsn(dsn)
    if not yes:
        what = "every dead letter" if selection is None else f"{len(selection)} dead letter(s)"
        click.confirm(f"Delete {what} of {queue!r} for good?", abort=True)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            purged = await store.purge_dead_letters(queue, dead_letter_ids=selection)
        emit_object({"queue": queue, "purged": purged}, output)

    run(body())
