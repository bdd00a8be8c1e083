"""``sluice streams list | create | describe | delete``: stream and queue management."""

from __future__ import annotations

from typing import Any

import click

from sluice.cli.output import emit_object, emit_rows
from sluice.cli.running import open_store, run
from sluice.cli.settings import output_setting, require_dsn, store_settings
from sluice.streams import DeliverySemantics, StreamConfig, StreamInfo, StreamType

STREAM_TYPES = {"persistent": StreamType.PERSISTENT, "queue": StreamType.EPHEMERAL, "ephemeral": StreamType.EPHEMERAL}


def stream_summary(info: StreamInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "type": "queue" if info.type is StreamType.EPHEMERAL else "persistent",
        "partitions": info.partitions,
        "delivery": info.delivery.value,
        "events": sum(partition.head for partition in info.partition_heads),
        "max_attempts": info.max_attempts,
        "created_at": info.created_at,
    }


@click.group()
def streams() -> None:
    """Create, list, describe and delete streams and queues."""


@streams.command("list")
@store_settings
@output_setting
def list_streams(dsn: str | None, schema_name: str, output: str) -> None:
    """List every stream and queue."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            found = await store.list_streams()
        emit_rows(
            [stream_summary(info) for info in found],
            ["name", "type", "partitions", "delivery", "events", "created_at"],
            output,
        )

    run(body())


@streams.command("create")
@click.argument("name")
@click.option("--type", "stream_type", type=click.Choice(sorted(STREAM_TYPES)), default="persistent", show_default=True)
@click.option("--partitions", type=click.IntRange(1, 1024), default=1, show_default=True)
@click.option(
    "--delivery",
    type=click.Choice([semantics.value for semantics in DeliverySemantics]),
    default=DeliverySemantics.BROADCAST.value,
    show_default=True,
    help="How consumer groups share a persistent stream's events.",
)
@click.option("--max-attempts", type=click.IntRange(1, 1000), default=5, show_default=True, help="Queues only.")
@store_settings
@output_setting
def create_stream(
    *,
    name: str,
    stream_type: str,
    partitions: int,
    delivery: str,
    max_attempts: int,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Create a stream (or a queue with --type queue). Creating one that exists as asked is a no-op."""

    async def body() -> None:
        config = StreamConfig(
            name=name,
            type=STREAM_TYPES[stream_type],
            partitions=partitions,
            delivery=DeliverySemantics(delivery),
            max_attempts=max_attempts,
        )
        async with open_store(require_dsn(dsn), schema_name) as store:
            info = await store.create_stream(config)
        emit_object(stream_summary(info), output)

    run(body())


@streams.command("describe")
@click.argument("name")
@store_settings
@output_setting
def describe_stream(name: str, dsn: str | None, schema_name: str, output: str) -> None:
    """Show a stream's configuration, its partitions' heads and its consumer groups with their lag."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            info = await store.get_stream(name)
            groups = [group for group in await store.consumer_groups().list_groups() if group.stream_name == name]
        description = stream_summary(info)
        description["partition_heads"] = [
            {"partition": p.partition, "head": p.head, "last_appended_at": p.last_appended_at}
            for p in info.partition_heads
        ]
        description["consumer_groups"] = [
            {"group": group.group_id, "members": group.members, "lag_events": group.lag_events} for group in groups
        ]
        if output == "json":
            emit_object(description, output)
            return
        emit_object({key: value for key, value in description.items() if not isinstance(value, list)}, output)
        click.echo("\npartitions:")
        emit_rows(description["partition_heads"], ["partition", "head", "last_appended_at"], output)
        click.echo("\nconsumer groups:")
        emit_rows(description["consumer_groups"], ["group", "members", "lag_events"], output)

    run(body())


@streams.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@store_settings
def delete_stream(name: str, yes: bool, dsn: str | None, schema_name: str) -> None:
    """Delete a stream or queue and all its data."""
    database = require_dsn(dsn)
    if not yes:
        click.confirm(f"Delete stream {name!r} and all its events?", abort=True, err=True)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            await store.delete_stream(name)
        click.echo(f"deleted stream {name!r}")

    run(body())
