"""``sluice append``: append events to a stream from ``--data``, a file (with a progress bar) or stdin."""

from __future__ import annotations

import sys
from typing import Any

import click

from sluice.cli.input_events import parse_event, parse_lines
from sluice.cli.output import emit_object
from sluice.cli.running import InvalidInput, open_store, run
from sluice.cli.settings import output_setting, require_dsn, setting, store_settings
from sluice.core.errors import InvalidArgumentError
from sluice.core.events import EventData, ExpectedOffset

SYMBOLIC_EXPECTATIONS = {expectation.value: expectation for expectation in ExpectedOffset}


def parse_expected_offset(text: str | None) -> int | ExpectedOffset | None:
    if text is None:
        return None
    if text in SYMBOLIC_EXPECTATIONS:
        return SYMBOLIC_EXPECTATIONS[text]
    if text.isdigit():
        return int(text)
    raise click.BadParameter(
        f"{text!r}: give the offset of the last event seen, or one of {sorted(SYMBOLIC_EXPECTATIONS)}",
        param_hint="--expected-offset",
    )


@click.command()
@click.argument("stream")
@click.option("--data", help="One event's data as JSON (with --type), or an envelope.")
@click.option("--file", "input_file", type=click.File("r"), help="JSON lines to append ('-' for stdin).")
@click.option("--type", "event_type", help="Event type of every event (then each JSON value is the data).")
@click.option("--partition-key", help="Route every event by this key (same key, same partition, in order).")
@click.option("--partition", type=click.IntRange(min=0), help="Append to this partition.")
@click.option("--expected-offset", help="Optimistic concurrency: last offset seen, or any|no_stream|stream_exists.")
@click.option("--correlation-id", help="Stored with every event.")
@setting(
    "--append-batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True, help="Events per append."
)
@store_settings
@output_setting
def append(
    *,
    stream: str,
    data: str | None,
    input_file: Any,
    event_type: str | None,
    partition_key: str | None,
    partition: int | None,
    expected_offset: str | None,
    correlation_id: str | None,
    append_batch_size: int,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Append events to STREAM. Without --data or --file, reads JSON lines from stdin.

    Each batch of --append-batch-size events is atomic; every line is checked before the first is
    written. --expected-offset applies to the first batch.
    """
    database = require_dsn(dsn)
    expected = parse_expected_offset(expected_offset)
    if data is not None and input_file is not None:
        raise click.UsageError("give --data or --file, not both")
    try:
        if data is not None:
            events = [parse_event(data, event_type=event_type, where="--data")]
        else:
            source = input_file if input_file is not None else sys.stdin
            events = parse_lines(source, event_type=event_type, source=getattr(source, "name", "stdin"))
    except InvalidArgumentError as error:
        raise InvalidInput(str(error)) from error
    show_progress = input_file is not None and len(events) > append_batch_size
    run(
        _append(
            database,
            schema_name,
            stream,
            events,
            batch_size=append_batch_size,
            expected=expected,
            partition_key=partition_key,
            partition=partition,
            correlation_id=correlation_id,
            output=output,
            show_progress=show_progress,
        )
    )


async def _append(
    dsn: str,
    schema_name: str,
    stream: str,
    events: list[EventData],
    *,
    batch_size: int,
    expected: int | ExpectedOffset | None,
    partition_key: str | None,
    partition: int | None,
    correlation_id: str | None,
    output: str,
    show_progress: bool,
) -> None:
    offsets: list[int] = []
    partitions: set[int] = set()
    deduplicated = 0
    async with open_store(dsn, schema_name) as store:
        with click.progressbar(
            length=len(events), label=f"appending to {stream}", file=sys.stderr, hidden=not show_progress
        ) as progress:
            for start in range(0, len(events), batch_size):
                batch = events[start : start + batch_size]
                result = await store.append(
                    stream,
                    batch,
                    expected_offset=expected if start == 0 else None,
                    correlation_id=correlation_id,
                    partition_key=partition_key,
                    partition=partition,
                )
                offsets.extend(result.offsets)
                partitions.update(result.partitions)
                deduplicated += len(batch) if result.deduplicated else 0
                progress.update(len(batch))
    emit_object(
        {
            "stream": stream,
            "appended": len(events) - deduplicated,
            "deduplicated": deduplicated,
            "partitions": sorted(partitions),
            "first_offset": min(offsets),
            "last_offset": max(offsets),
        },
        output,
    )
