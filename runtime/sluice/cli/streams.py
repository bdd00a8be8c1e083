"""``sluice streams list | create | describe | delete | archive | unarchive | restore | purge-deleted``:
stream and queue management, lifecycle included (who did it is recorded: ``--actor``, or the login name)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import click

from sluice.cli.durations import Seconds
from sluice.cli.output import emit_object, emit_rows
from sluice.cli.running import open_store, run
from sluice.cli.settings import output_setting, require_dsn, setting, store_settings
from sluice.core.compression import DEFAULT_COMPRESSION_THRESHOLD, Compression
from sluice.core.streams import DeliverySemantics, StreamConfig, StreamInfo, StreamType
from sluice.store import EventStore

CommandT = TypeVar("CommandT", bound=Callable[..., Any])

STREAM_TYPES = {"persistent": StreamType.PERSISTENT, "queue": StreamType.EPHEMERAL, "ephemeral": StreamType.EPHEMERAL}


def stream_summary(info: StreamInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "type": "queue" if info.type is StreamType.EPHEMERAL else "persistent",
        "partitions": info.partitions,
        "delivery": info.delivery.value,
        "events": sum(partition.head for partition in info.partition_heads),
        "max_attempts": info.max_attempts,
        "compression": info.compression.value,
        "threshold": info.compression_threshold,  # bytes: larger payloads are compressed
        "state": stream_state(info),
        "created_at": info.created_at,
        "created_by": info.created_by,
        "archived_at": info.archived_at,
        "archived_by": info.archived_by,
        "deleted_at": info.deleted_at,
        "deleted_by": info.deleted_by,
    }


def stream_state(info: StreamInfo) -> str:
    """``active``, ``archived`` or ``deleted`` (a soft-deleted stream may also be archived)."""
    if info.deleted:
        return "deleted"
    return "archived" if info.archived else "active"


def default_actor() -> str | None:
    """The login name, recorded as who made a change when ``--actor`` is not given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def actor_setting(command: CommandT) -> CommandT:
    """``--actor``: who is recorded as making the change."""
    return setting("--actor", help="Who is recorded as making the change (default: your login name).")(command)


@click.group()
def streams() -> None:
    """Create, list, describe, archive, delete and restore streams and queues."""


@streams.command("list")
@click.option("--include-deleted", is_flag=True, help="Also list soft-deleted streams (restorable).")
@store_settings
@output_setting
def list_streams(include_deleted: bool, dsn: str | None, schema_name: str, output: str) -> None:
    """List every stream and queue."""

    async def body() -> None:
        async with open_store(require_dsn(dsn), schema_name) as store:
            found = await store.list_streams(include_deleted=include_deleted)
        emit_rows(
            [stream_summary(info) for info in found],
            ["name", "type", "partitions", "delivery", "events", "state", "created_at"],
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
@click.option(
    "--compression",
    type=click.Choice([compression.value for compression in Compression]),
    default=Compression.NONE.value,
    show_default=True,
    help="Compress payloads over --compression-threshold bytes (readers get the original bytes back).",
)
@click.option(
    "--compression-threshold",
    type=click.IntRange(0, 256 * 1024 * 1024),
    default=DEFAULT_COMPRESSION_THRESHOLD,
    show_default=True,
)
@actor_setting
@store_settings
@output_setting
def create_stream(
    *,
    name: str,
    stream_type: str,
    partitions: int,
    delivery: str,
    max_attempts: int,
    compression: str,
    compression_threshold: int,
    actor: str | None,
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
            compression=Compression(compression),
            compression_threshold=compression_threshold,
        )
        async with open_store(require_dsn(dsn), schema_name) as store:
            info = await store.create_stream(config, actor=actor or default_actor())
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
@click.option("--soft", is_flag=True, help="Only hide it and refuse writes: `sluice streams restore` brings it back.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (a hard delete asks).")
@actor_setting
@store_settings
def delete_stream(*, name: str, soft: bool, yes: bool, actor: str | None, dsn: str | None, schema_name: str) -> None:
    """Delete a stream or queue and all its data (with --soft: hide it, restorable for a grace period)."""
    database = require_dsn(dsn)
    if not (yes or soft):
        click.confirm(f"Delete stream {name!r} and all its events?", abort=True, err=True)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            await store.delete_stream(name, soft=soft, actor=actor or default_actor())
        click.echo(f"deleted stream {name!r}" + (" (soft: restorable with `sluice streams restore`)" if soft else ""))

    run(body())


def lifecycle_command(
    command_name: str, summary: str, change: Callable[[EventStore, str, str | None], Any]
) -> click.Command:
    """A command that applies one lifecycle change to the stream NAME and prints the stream."""

    @streams.command(command_name, help=summary)
    @click.argument("name")
    @actor_setting
    @store_settings
    @output_setting
    def command(name: str, actor: str | None, dsn: str | None, schema_name: str, output: str) -> None:
        async def body() -> None:
            async with open_store(require_dsn(dsn), schema_name) as store:
                info = await change(store, name, actor or default_actor())
            emit_object(stream_summary(info), output)

        run(body())

    return command


archive_stream = lifecycle_command(
    "archive",
    "Make a stream or queue read-only: appends and enqueues are refused, reads and consumer groups go on.",
    lambda store, name, actor: store.archive_stream(name, actor=actor),
)
unarchive_stream = lifecycle_command(
    "unarchive",
    "Make an archived stream or queue writable again.",
    lambda store, name, actor: store.unarchive_stream(name, actor=actor),
)
restore_stream = lifecycle_command(
    "restore",
    "Bring back a soft-deleted stream or queue with its data (within the grace period).",
    lambda store, name, actor: store.restore_stream(name, actor=actor),
)


@streams.command("purge-deleted")
@click.option(
    "--older-than",
    type=Seconds(),
    default=None,
    help="Seconds since the soft delete (default: the store's grace period, 7 days).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@store_settings
def purge_deleted(older_than: float | None, yes: bool, dsn: str | None, schema_name: str) -> None:
    """Remove soft-deleted streams for good (their data too)."""
    database = require_dsn(dsn)
    if not yes:
        click.confirm("Remove the soft-deleted streams and all their events for good?", abort=True, err=True)

    async def body() -> None:
        age = None if older_than is None else timedelta(seconds=older_than)
        async with open_store(database, schema_name) as store:
            purged = await store.purge_deleted_streams(older_than=age)
        click.echo(f"purged {len(purged)} stream(s)" + (": " + ", ".join(purged) if purged else ""))

    run(body())
