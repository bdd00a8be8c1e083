"""``sluice dead-letters list|show|redrive|purge``: inspect dead letters, put them back, delete them.

``QUEUE`` alone: a queue's dead letters (redrive puts them back on the queue as new messages).
``STREAM --group GROUP``: a consumer group's dead letters (redrive delivers them to that group
again, and to no other group of the stream); see docs/dead-letters.md.
"""

from __future__ import annotations

from typing import Any

import click

from sluice.cli import group_dead_letters as group_forms
from sluice.cli.output import emit_object, emit_rows
from sluice.cli.running import open_store, run
from sluice.cli.settings import output_setting, require_dsn, store_settings
from sluice.core.messages import DeadLetter

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


group_option = click.option(
    "--group",
    help="A consumer group: act on its dead letters of the stream named by the argument (not a queue's).",
)


@click.group("dead-letters")
def dead_letters() -> None:
    """Dead letters: a queue's messages, or a consumer group's events (--group), that used up their
    delivery attempts."""


@dead_letters.command("list")
@click.argument("queue")
@group_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--after-id", type=click.IntRange(min=0), default=0, help="With --group: page on from this id.")
@store_settings
@output_setting
def list_dead_letters(
    *, queue: str, group: str | None, limit: int, after_id: int, dsn: str | None, schema_name: str, output: str
) -> None:
    """List QUEUE's (or, with --group, the group's on stream QUEUE) dead letters, oldest first."""
    database = require_dsn(dsn)
    if group is not None:
        run(
            group_forms.list_group_dead_letters(
                dsn=database,
                schema_name=schema_name,
                stream=queue,
                group=group,
                limit=limit,
                after_id=after_id,
                output=output,
            )
        )
        return

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            letters = await store.dead_letters(queue, limit=limit)
        emit_rows([dead_letter_record(letter) for letter in letters], DEAD_LETTER_COLUMNS, output)

    run(body())


@dead_letters.command()
@click.argument("stream")
@click.option("--group", required=True, help="The consumer group whose dead letter to show.")
@click.option("--id", "dead_letter_id", type=click.IntRange(min=1), required=True, help="The dead letter.")
@store_settings
@output_setting
def show(*, stream: str, group: str, dead_letter_id: int, dsn: str | None, schema_name: str, output: str) -> None:
    """Show one dead letter of GROUP on STREAM: the original event, its error, attempts and times."""
    database = require_dsn(dsn)
    run(
        group_forms.show_group_dead_letter(
            dsn=database,
            schema_name=schema_name,
            stream=stream,
            group=group,
            dead_letter_id=dead_letter_id,
            output=output,
        )
    )


@dead_letters.command()
@click.argument("queue")
@group_option
@click.option("--id", "dead_letter_ids", type=click.IntRange(min=1), multiple=True, help="A dead letter to redrive.")
@click.option("--all", "every", is_flag=True, help="Redrive every dead letter of QUEUE (or of the group).")
@store_settings
@output_setting
def redrive(
    *,
    queue: str,
    group: str | None,
    dead_letter_ids: tuple[int, ...],
    every: bool,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Put dead letters back on QUEUE as new messages (delivery history kept, attempts start again);
    with --group, have the group's members deliver them again (to that group only)."""
    selection = _selection(dead_letter_ids, every)
    database = require_dsn(dsn)
    if group is not None:
        run(
            group_forms.redrive_group_dead_letters(
                dsn=database, schema_name=schema_name, stream=queue, group=group, selection=selection, output=output
            )
        )
        return

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            message_ids = await store.redrive_dead_letters(queue, dead_letter_ids=selection)
        emit_object({"queue": queue, "redriven": len(message_ids), "message_ids": message_ids}, output)

    run(body())


@dead_letters.command()
@click.argument("queue")
@group_option
@click.option("--id", "dead_letter_ids", type=click.IntRange(min=1), multiple=True, help="A dead letter to delete.")
@click.option("--all", "every", is_flag=True, help="Delete every dead letter of QUEUE (or of the group).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@store_settings
@output_setting
def purge(
    *,
    queue: str,
    group: str | None,
    dead_letter_ids: tuple[int, ...],
    every: bool,
    yes: bool,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Delete dead letters of QUEUE (or, with --group, the group's on stream QUEUE) for good."""
    selection = _selection(dead_letter_ids, every)
    database = require_dsn(dsn)
    if not yes:
        what = "every dead letter" if selection is None else f"{len(selection)} dead letter(s)"
        owner = f"group {group!r} of {queue!r}" if group is not None else repr(queue)
        click.confirm(f"Delete {what} of {owner} for good?", abort=True)
    if group is not None:
        run(
            group_forms.purge_group_dead_letters(
                dsn=database, schema_name=schema_name, stream=queue, group=group, selection=selection, output=output
            )
        )
        return

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            purged = await store.purge_dead_letters(queue, dead_letter_ids=selection)
        emit_object({"queue": queue, "purged": purged}, output)

    run(body())
