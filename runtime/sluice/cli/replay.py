"""``sluice replay``: replay a stream into a consumer group, a projection or another stream, and
``sluice replay status NAME`` / ``sluice replay cancel NAME`` / ``sluice replay list``.

    sluice replay --name N --stream S (--from-offset N | --from-time ISO) [--partition P ...]
                  (--to-consumer-group G | --to-projection P | --to-stream T) [--rate-limit R] --batch-size N

is the command line the operator's Replay Jobs run. A name that is recorded and unfinished resumes
from its recorded positions. Exit codes: 0 succeeded, 1 failed (or interrupted: run again to resume),
2 usage error, 3 cancelled. On a terminal a progress bar shows on stderr; otherwise a progress line
every ``--progress-interval`` seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click

from sluice.cli.durations import Seconds
from sluice.cli.output import emit_object, emit_rows
from sluice.cli.reading import parse_time
from sluice.cli.running import InvalidInput, handle_stop_signals, open_store, run
from sluice.cli.settings import output_setting, require_dsn, setting, store_settings
from sluice.core.errors import InvalidArgumentError
from sluice.services.replay import ReplayProgress, ReplayRequest, Replays, ReplayState, ReplayTargetKind
from sluice.store.values.replays import MAXIMUM_BATCH_SIZE

CANCELLED_EXIT_CODE = 3
LIST_COLUMNS = ("name", "state", "stream", "target", "target_name", "events_done", "events_total", "percent")


def progress_record(progress: ReplayProgress) -> dict[str, Any]:
    """A replay's progress as a JSON-ready mapping."""
    request = progress.request
    eta = progress.eta
    return {
        "name": progress.name,
        "state": progress.state.value,
        "stream": request.stream,
        "target": request.target.value,
        "target_name": request.target_name,
        "events_done": progress.events_done,
        "events_total": progress.events_total,
        "percent": progress.percent,
        "events_per_second": round(progress.events_per_second, 3) if progress.events_per_second else None,
        "eta_seconds": round(eta.total_seconds(), 3) if eta is not None else None,
        "estimated_completion": progress.estimated_completion,
        "cancel_requested": progress.cancel_requested,
        "error": progress.error,
        "created_at": progress.created_at,
        "started_at": progress.started_at,
        "updated_at": progress.updated_at,
        "finished_at": progress.finished_at,
        "partitions": [
            {
                "partition": partition.partition,
                "start_offset": partition.start_offset,
                "next_offset": partition.next_offset,
                "end_offset": partition.end_offset,
            }
            for partition in progress.partitions
        ],
    }


def progress_line(progress: ReplayProgress) -> str:
    """One line for logs: ``replay r: 120/200 events (60%), 40.0 events/s, about 2 s left``."""
    text = f"replay {progress.name}: {progress.state.value}, {progress.events_done}/{progress.events_total} events"
    text += f" ({progress.percent}%)"
    if progress.events_per_second:
        text += f", {progress.events_per_second:.1f} events/s"
    if progress.eta is not None:
        text += f", about {progress.eta.total_seconds():.0f} s left"
    return text


class _ProgressReporter:
    """A progress bar on a terminal, else a line every ``interval`` seconds (both on stderr)."""

    def __init__(self, *, interval: float) -> None:
        self._interval = interval
        self._bar: Any = None
        self._shown = 0
        self._last_line = 0.0
        self._interactive = sys.stderr.isatty()

    def __call__(self, progress: ReplayProgress) -> None:
        if self._interactive:
            if self._bar is None:
                self._bar = click.progressbar(
                    length=progress.events_total, label=f"replay {progress.name}", file=sys.stderr
                )
                self._bar.__enter__()
            self._bar.update(progress.events_done - self._shown)
            self._shown = progress.events_done
        elif time.monotonic() - self._last_line >= self._interval or progress.state is not ReplayState.RUNNING:
            self._last_line = time.monotonic()
            click.echo(progress_line(progress), err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _target(
    to_consumer_group: str | None, to_projection: str | None, to_stream: str | None
) -> tuple[ReplayTargetKind, str]:
    given = [
        (kind, name)
        for kind, name in (
            (ReplayTargetKind.CONSUMER_GROUP, to_consumer_group),
            (ReplayTargetKind.PROJECTION, to_projection),
            (ReplayTargetKind.STREAM, to_stream),
        )
        if name is not None
    ]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --to-consumer-group, --to-projection or --to-stream")
    kind, name = given[0]
    return kind, name


@click.group(invoke_without_command=True)
@click.option("--name", help="The replay's name; a recorded, unfinished replay of this name resumes.")
@click.option("--stream", help="The source stream.")
@click.option("--from-offset", type=click.IntRange(min=0), help="Replay from this offset in every partition.")
@click.option("--from-time", help="Replay from the first event at or after this ISO 8601 time (UTC if no zone).")
@click.option("--partition", "partitions", type=click.IntRange(min=0), multiple=True, help="Only this partition.")
@click.option("--to-consumer-group", help="Reset this group's offsets (fencing its members) and follow it.")
@click.option("--to-projection", help="Rebuild this projection.")
@click.option("--to-stream", help="Append to this stream (created like the source if missing).")
@setting("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="At most this many events per second.")
@setting(
    "--batch-size",
    type=click.IntRange(1, MAXIMUM_BATCH_SIZE),
    default=500,
    show_default=True,
    help="Events read and delivered at once.",
)
@setting(
    "--progress-interval",
    type=Seconds(),
    default=10.0,
    show_default=True,
    help="Seconds between progress lines when stderr is not a terminal.",
)
@store_settings
@output_setting
@click.pass_context
def replay(
    context: click.Context,
    *,
    name: str | None,
    stream: str | None,
    from_offset: int | None,
    from_time: str | None,
    partitions: tuple[int, ...],
    to_consumer_group: str | None,
    to_projection: str | None,
    to_stream: str | None,
    rate_limit: float | None,
    batch_size: int,
    progress_interval: float,
    dsn: str | None,
    schema_name: str,
    output: str,
) -> None:
    """Replay a stream's events into a consumer group, a projection or another stream.

    Progress is recorded after every batch: run the same command again after a crash and it resumes
    without duplicating events in a target stream. Subcommands: status, cancel, list.
    """
    if context.invoked_subcommand is not None:
        return
    if name is None or stream is None:
        raise click.UsageError("give --name and --stream (or a subcommand: status, cancel, list)")
    if (from_offset is None) == (from_time is None):
        raise click.UsageError("give exactly one of --from-offset or --from-time")
    kind, target_name = _target(to_consumer_group, to_projection, to_stream)
    database = require_dsn(dsn)
    try:
        request = ReplayRequest(
            name=name,
            stream=stream,
            partitions=partitions or None,
            from_offset=from_offset,
            from_time=parse_time(from_time),
            target=kind,
            target_name=target_name,
            rate_limit=rate_limit,
            batch_size=batch_size,
        )
    except InvalidArgumentError as error:
        raise InvalidInput(str(error)) from error
    progress = run(_run_replay(database, schema_name, request, progress_interval))
    emit_object(progress_record(progress), output)
    if progress.state is ReplayState.CANCELLED:
        context.exit(CANCELLED_EXIT_CODE)


async def _run_replay(dsn: str, schema_name: str, request: ReplayRequest, interval: float) -> ReplayProgress:
    reporter = _ProgressReporter(interval=interval)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    handled_signals = handle_stop_signals(task.cancel)
    try:
        async with open_store(dsn, schema_name) as store:
            return await Replays(store).start(request, on_progress=reporter)
    except asyncio.CancelledError:
        raise click.ClickException(f"replay {request.name!r} interrupted; run it again to resume") from None
    finally:
        reporter.close()
        for signal_number in handled_signals:
            loop.remove_signal_handler(signal_number)


@replay.command("status")
@click.argument("name")
@store_settings
@output_setting
def replay_status(name: str, dsn: str | None, schema_name: str, output: str) -> None:
    """Progress of replay NAME: state, events done of total, rate, ETA, positions."""

    async def body() -> ReplayProgress:
        async with open_store(require_dsn(dsn), schema_name) as store:
            return await Replays(store).progress(name)

    emit_object(progress_record(run(body())), output)


@replay.command("cancel")
@click.argument("name")
@store_settings
@output_setting
def replay_cancel(name: str, dsn: str | None, schema_name: str, output: str) -> None:
    """Cancel replay NAME (a running replay stops before its next batch)."""

    async def body() -> ReplayProgress:
        async with open_store(require_dsn(dsn), schema_name) as store:
            return await Replays(store).cancel(name)

    emit_object(progress_record(run(body())), output)


@replay.command("list")
@store_settings
@output_setting
def replay_list(dsn: str | None, schema_name: str, output: str) -> None:
    """Every recorded replay with its state and progress."""

    async def body() -> list[ReplayProgress]:
        async with open_store(require_dsn(dsn), schema_name) as store:
            return await Replays(store).list()

    rows = [progress_record(progress) for progress in run(body())]
    emit_rows(
        rows, ["name", "state", "stream", "target", "target_name", "events_done", "events_total", "percent"], output
    )
