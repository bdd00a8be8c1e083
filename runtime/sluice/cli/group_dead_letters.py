"""The consumer-group forms of ``sluice dead-letters`` (``--group GROUP`` given, the argument is
the stream): what each prints, and the calls to ``sluice.services.retries.group_dead_letters``."""

from __future__ import annotations

import base64
from typing import Any

from sluice.cli.output import emit_object, emit_rows
from sluice.cli.running import open_store
from sluice.services.retries import GroupDeadLetter, group_dead_letters

GROUP_DEAD_LETTER_COLUMNS = [
    "dead_letter_id",
    "partition",
    "offset",
    "event_type",
    "attempts",
    "last_failure_at",
    "redrive",
    "error",
]


def group_dead_letter_record(letter: GroupDeadLetter) -> dict[str, Any]:
    """A group's dead letter as a JSON-ready mapping (the whole record: ``show`` prints it)."""
    record: dict[str, Any] = {
        "dead_letter_id": letter.dead_letter_id,
        "stream": letter.stream_name,
        "group": letter.group_id,
        "partition": letter.partition,
        "offset": letter.offset,
        "event_id": str(letter.event_id),
        "event_type": letter.event_type,
        "schema_version": letter.schema_version,
        "content_type": letter.content_type,
        "metadata": dict(letter.metadata),
        "correlation_id": letter.correlation_id,
        "appended_at": letter.appended_at,
        "error": letter.error,
        "attempts": letter.attempts,
        "first_failure_at": letter.first_failure_at,
        "last_failure_at": letter.last_failure_at,
        "dead_lettered_at": letter.dead_lettered_at,
        "dead_letter_stream": letter.dead_letter_stream,
        "consumer_id": letter.consumer_id,
        "redrives": letter.redrives,
        "redrive": "pending" if letter.awaiting_redrive else None,
        "redrive_requested_at": letter.redrive_requested_at,
    }
    data = letter.data
    if isinstance(data, bytes):
        record["data_base64"] = base64.b64encode(data).decode("ascii")
    else:
        record["data"] = data
    return record


async def list_group_dead_letters(
    *, dsn: str, schema_name: str, stream: str, group: str, limit: int, after_id: int, output: str
) -> None:
    async with open_store(dsn, schema_name) as store:
        letters = await group_dead_letters(store).list(stream, group, limit=limit, after_id=after_id)
    emit_rows([group_dead_letter_record(letter) for letter in letters], GROUP_DEAD_LETTER_COLUMNS, output)


async def show_group_dead_letter(
    *, dsn: str, schema_name: str, stream: str, group: str, dead_letter_id: int, output: str
) -> None:
    async with open_store(dsn, schema_name) as store:
        letter = await group_dead_letters(store).get(stream, group, dead_letter_id)
    emit_object(group_dead_letter_record(letter), output)


async def redrive_group_dead_letters(
    *, dsn: str, schema_name: str, stream: str, group: str, selection: list[int] | None, output: str
) -> None:
    async with open_store(dsn, schema_name) as store:
        redriven = await group_dead_letters(store).redrive(stream, group, dead_letter_ids=selection)
    emit_object({"stream": stream, "group": group, "redriven": len(redriven), "dead_letter_ids": redriven}, output)


async def purge_group_dead_letters(
    *, dsn: str, schema_name: str, stream: str, group: str, selection: list[int] | None, output: str
) -> None:
    async with open_store(dsn, schema_name) as store:
        purged = await group_dead_letters(store).purge(stream, group, dead_letter_ids=selection)
    emit_object({"stream": stream, "group": group, "purged": purged}, output)
