"""``sluice groups list | describe | reset`` and ``sluice lag``: consumer-group administration."""

from __future__ import annotations

from typing import Any

import click

from sluice.cli.output import emit_object, emit_rows
from sluice.cli.reading import parse_time
from sluice.cli.running import open_store, run
from sluice.cli.settings import output_setting, require_dsn, store_settings
from sluice.store.values.consumer_group_options import StartFrom, StartPosition
from sluice.store.values.consumer_groups import GroupDescription

LAG_COLUMNS = ["group", "partition", "committed_offset", "head", "lag_events", "lag_seconds", "owner", "epoch"]


def lag_rows(description: GroupDescription) -> list[dict[str, Any]]:
    return [
        {
            "stream": description.stream_name,
            "group": description.group_id,
            "partition": partition.partition,
            "committed_offset": partition.committed_offset,
            "head": partition.head,
            "lag_events": partition.lag_events,
            "lag_seconds": round(partition.lag_seconds, 3),
            "owner": partition.owner,
            "epoch": partition.epoch,
        }
        for partition in description.partitions
    ]


def parse_target(text: str) -> StartPosition:
    """``earliest``, ``latest``, ``offset:N`` or ``time:ISO``."""
    kind, _, value = text.partition(":")
    if kind in ("earliest", "latest") and not value:
        return StartPosition(start_from=StartFrom(kind))
    if kind == "offset" and value.isdigit():
        return StartPosition(start_from=StartFrom.OFFSET, offset=int(value))
    if kind == "time" and value:
        return StartPosition(start_from=StartFrom.TIME, time=parse_time(value))
    raise click.BadParameter(f"{text!r}: use earliest, latest, offset:N or time:ISO-8601", param_hint="--to")


@click.group()
def groups() -> None:
    """List, describe and reset consumer groups."""


@groups.command("list")
@click.option("--stream", help="Only the groups of this stream.")
@store_settings
@output_setting
def list_groups(stream: str | None, dsn: str | None, schema_name: str, output: str) -> None:
    """Every consumer group with its members and total lag."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            found = await store.consumer_groups().list_groups()
        rows = [
            {"stream": g.stream_name, "group": g.group_id, "members": g.members, "lag_events": g.lag_events}
            for g in found
            if stream is None or g.stream_name == stream
        ]
        emit_rows(rows, ["stream", "group", "members", "lag_events"], output)

    run(body())


def description_record(description: GroupDescription) -> dict[str, Any]:
    return {
        "stream": description.stream_name,
        "group": description.group_id,
        "generation": description.generation,
        "created_at": description.created_at,
        "lag_events": description.lag_events,
        "lag_seconds": round(description.lag_seconds, 3),
        "members": [
            {
                "consumer_id": member.consumer_id,
                "active": member.active,
                "partitions": list(member.partitions),
                "joined_at": member.joined_at,
                "last_heartbeat_at": member.last_heartbeat_at,
            }
            for member in description.members
        ],
        "partitions": lag_rows(description),
    }


def emit_description(description: GroupDescription, output: str) -> None:
    record = description_record(description)
    if output == "json":
        emit_object(record, output)
        return
    emit_object({key: value for key, value in record.items() if not isinstance(value, list)}, output)
    click.echo("\nmembers:")
    emit_rows(record["members"], ["consumer_id", "active", "partitions", "last_heartbeat_at"], output)
    click.echo("\npartitions:")
    emit_rows(record["partitions"], LAG_COLUMNS[1:], output)


@groups.command("describe")
@click.argument("stream")
@click.argument("group")
@store_settings
@output_setting
def describe_group(stream: str, group: str, dsn: str | None, schema_name: str, output: str) -> None:
    """Members, assignments, committed offsets and lag per partition of GROUP on STREAM."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            description = await store.consumer_groups().describe(stream, group)
        emit_description(description, output)

    run(body())


@groups.command("reset")
@click.argument("stream")
@click.argument("group")
@click.option("--to", "target", required=True, help="earliest, latest, offset:N or time:ISO-8601.")
@click.option("--force", is_flag=True, help="Reset even with active members (they are fenced and resume there).")
@store_settings
@output_setting
def reset_group(
    *, stream: str, group: str, target: str, force: bool, dsn: str | None, schema_name: str, output: str
) -> None:
    """Move GROUP's committed offsets on STREAM."""
    database = require_dsn(dsn)
    position = parse_target(target)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            description = await store.consumer_groups().reset_offsets(stream, group, to=position, force=force)
        emit_description(description, output)

    run(body())


@click.command()
@click.argument("stream")
@click.option("--group", help="Only this group (default: every group of STREAM).")
@store_settings
@output_setting
def lag(stream: str, group: str | None, dsn: str | None, schema_name: str, output: str) -> None:
    """Lag per group and partition: committed offset, head, events and seconds behind."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            reader = store.consumer_groups()
            await store.get_stream(stream)  # an unknown stream is an error, not an empty table
            if group is not None:
                names = [group]
            else:
                names = [g.group_id for g in await reader.list_groups() if g.stream_name == stream]
            rows = [row for name in names for row in lag_rows(await reader.lag(stream, name))]
        emit_rows(rows, LAG_COLUMNS, output)

    run(body())
