"""``sluice read`` (a page of a partition, by offset or time, either direction) and ``sluice tail``
(follow new events of every partition until interrupted or ``--limit`` events)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import click

from sluice.cli.output import emit_event
from sluice.cli.running import handle_stop_signals, one_line, one_line_logs, open_store, run
from sluice.cli.settings import output_setting, require_dsn, store_settings
from sluice.core.errors import ConnectionLostError, DatabaseBusyError
from sluice.core.events import Direction, RecordedEvent
from sluice.store import EventStore


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time; without a zone it is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--from-time") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@click.command()
@click.argument("stream")
@click.option("--partition", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--from-offset", type=click.IntRange(min=0), help="Start here (default: the first, or the last backwards)."
)
@click.option("--from-time", help="Start at the first event stored at or after this ISO 8601 time.")
@click.option("--backwards", is_flag=True, help="Walk from newest to oldest.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@store_settings
@output_setting
def read(
    *,
    stream: str,
    partition: int,
    from_offset: int | None,
    from_time: str | None,
    backwards: bool,
    limit: int,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Read events of one partition of STREAM."""
    database = require_dsn(dsn)
    start_time = parse_time(from_time)
    if from_offset is not None and start_time is not None:
        raise click.UsageError("give --from-offset or --from-time, not both")

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            first = True
            async for event in store.read_stream(
                stream,
                from_offset=from_offset,
                from_time=start_time,
                direction=Direction.BACKWARDS if backwards else Direction.FORWARDS,
                limit=limit,
                partition=partition,
            ):
                emit_event(event, output, header=first)
                first = False
            if first and output == "table":
                click.echo("(no events)", err=True)

    run(body())


@click.command()
@click.argument("stream")
@click.option("--partition", type=click.IntRange(min=0), help="Follow only this partition (default: all).")
@click.option("--from-beginning", is_flag=True, help="Start with the first event instead of new ones.")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many events.")
@store_settings
@output_setting
def tail(
    *,
    stream: str,
    partition: int | None,
    from_beginning: bool,
    limit: int | None,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Print new events of STREAM as they are appended, until Ctrl-C (or SIGTERM, or --limit)."""
    database = require_dsn(dsn)
    run(
        _tail(
            dsn=database,
            schema_name=schema_name,
            stream=stream,
            partition=partition,
            from_beginning=from_beginning,
            limit=limit,
            output=output,
        )
    )


OUTAGE_FIRST_DELAY_SECONDS = 0.1
OUTAGE_MAX_DELAY_SECONDS = 2.0


async def _tail(
    *,
    dsn: str,
    schema_name: str,
    stream: str,
    partition: int | None,
    from_beginning: bool,
    limit: int | None,
    output: str,
) -> None:
    with one_line_logs():
        await _tail_store(
            dsn=dsn,
            schema_name=schema_name,
            stream=stream,
            partition=partition,
            from_beginning=from_beginning,
            limit=limit,
            output=output,
        )


async def _tail_store(
    *,
    dsn: str,
    schema_name: str,
    stream: str,
    partition: int | None,
    from_beginning: bool,
    limit: int | None,
    output: str,
) -> None:
    async with open_store(dsn, schema_name) as store:
        info = await store.get_stream(stream)
        partitions = [partition] if partition is not None else list(range(info.partitions))
        starts = {p.partition: (0 if from_beginning else p.head) for p in info.partition_heads}
        arrivals: asyncio.Queue[RecordedEvent] = asyncio.Queue(maxsize=1000)
        followers = [
            asyncio.create_task(_follow(store, stream, number, starts.get(number, 0), arrivals), name=f"tail-{number}")
            for number in partitions
        ]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled_signals = handle_stop_signals(stop.set)
        stopped = asyncio.create_task(stop.wait())
        where = "the beginning" if from_beginning else "the end"
        click.echo(f"following {stream!r} partition(s) {partitions} from {where}; Ctrl-C stops", err=True)
        try:
            printed = 0
            while limit is None or printed < limit:
                arrival = asyncio.create_task(arrivals.get())
                done, _ = await asyncio.wait({arrival, stopped, *followers}, return_when=asyncio.FIRST_COMPLETED)
                if arrival not in done:
                    arrival.cancel()
                    for follower in followers:
                        if follower in done:
                            follower.result()  # a follower that failed re-raises its error here
                    break
                emit_event(arrival.result(), output, header=printed == 0)
                printed += 1
        finally:
            for signal_number in handled_signals:
                loop.remove_signal_handler(signal_number)
            for task in (*followers, stopped):
                task.cancel()
            for task in (*followers, stopped):
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _follow(
    store: EventStore, stream: str, partition: int, start: int, arrivals: asyncio.Queue[RecordedEvent]
) -> None:
    """Follow one partition from ``start``, riding out database outages: a restart or a killed
    connection is noted once on stderr, and the subscription resumes at the next offset once the
    database answers (tail used to exit 1 on the first blip)."""
    position, delay, noted = start, OUTAGE_FIRST_DELAY_SECONDS, False
    while True:
        try:
            async for event in store.subscribe(stream, from_offset=position, partition=partition):
                if noted:
                    click.echo(f"the database answers again; following partition {partition} from {position}", err=True)
                    delay, noted = OUTAGE_FIRST_DELAY_SECONDS, False
                await arrivals.put(event)
                position = event.offset + 1
            return
        except (ConnectionLostError, DatabaseBusyError) as error:
            if not noted:
                click.echo(f"the database is unavailable, retrying: {one_line(error)}", err=True)
                noted = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, OUTAGE_MAX_DELAY_SECONDS)
