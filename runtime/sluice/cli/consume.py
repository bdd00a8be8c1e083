"""``sluice consume``: run one consumer-group member that delivers every event to an HTTP sink
(a CloudEvent in binary content mode) or a Python handler. This command line is a contract with the
operator, whose ConsumerGroup pods run it (see docs/cli.md, "sluice consume").

Everything is checked before anything is touched: a usage error (exit 2) has no side effect.

The worker never exits because the database is away: at start-up it serves its health endpoint at
once (not ready, saying why), connects with backoff, and logs each failure; later outages are waited
out by the worker itself (see sluice.services.workers.consumer).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import click

import sluice
from sluice.cli.durations import Seconds
from sluice.cli.retry_settings import retry_policy, retry_settings
from sluice.cli.running import handle_stop_signals, run
from sluice.cli.settings import require_dsn, setting
from sluice.core.errors import InvalidArgumentError
from sluice.core.names import validate_group_id, validate_stream_name
from sluice.services.retries.policy import Backoff, default_dead_letter_stream
from sluice.store.values.consumer_group_options import (
    ConsumerGroupOptions,
    OffsetCommitStrategy,
    StartFrom,
    StartPosition,
)

if TYPE_CHECKING:
    from sluice.services.retries.delivery import Delivery
    from sluice.services.workers.consumer import ConsumerSettings
    from sluice.store.values.consumed import ConsumedEvent

ResultT = TypeVar("ResultT")


def checked(value: str, parameter: str, validate: Callable[[str], ResultT]) -> ResultT:
    """Run a validator (or loader), reporting its error as a usage error of ``parameter``."""
    try:
        return validate(value)
    except InvalidArgumentError as error:
        raise click.BadParameter(str(error), param_hint=parameter) from error


@click.command()
@setting("--stream", required=True, help="The persistent stream to consume.")
@setting("--group", required=True, help="The consumer group to join.")
@setting("--sink", help="POST each event to this URL as a CloudEvent (binary content mode).")
@setting("--handler", help="Call this Python function, 'module:function' (async or sync), with each event.")
@setting("--consumer-id", help="This member's id (static membership). Default: the host name.")
@setting(
    "--commit-strategy",
    type=click.Choice([strategy.value for strategy in OffsetCommitStrategy]),
    default=OffsetCommitStrategy.AFTER_BATCH.value,
    show_default=True,
)
@setting("--commit-interval", type=Seconds(0.001), default=5.0, show_default=True, help="Seconds (periodic).")
@setting("--batch-size", type=click.IntRange(1, 10_000), default=100, show_default=True)
@setting("--session-timeout", type=Seconds(0.1), default=30.0, show_default=True, help="Seconds.")
@setting(
    "--start-from",
    type=click.Choice([choice.value for choice in StartFrom]),
    default=StartFrom.EARLIEST.value,
    show_default=True,
    help="Where a new group starts (ignored once the group exists): offset needs --start-offset, time --start-time.",
)
@setting("--start-offset", type=click.IntRange(min=0), help="With --start-from offset: the offset, in every partition.")
@setting(
    "--start-time",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"]),
    help="With --start-from time: the first event at or after this time (ISO 8601 with an offset or Z).",
)
@setting(
    "--max-attempts",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    help="Deliveries before dead-lettering.",
)
@setting(
    "--dead-letter-stream", help="Where events go after their last attempt. Default: <stream>.<group>.dead-letter."
)
@setting(
    "--http-port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Health and metrics; 0 = off."
)
@setting("--http-host", default="0.0.0.0", show_default=True, help="Address of the health and metrics endpoint.")  # noqa: S104
@retry_settings
@setting("--sink-timeout", type=Seconds(0.001), default=10.0, show_default=True, help="Seconds per POST.")
@setting(
    "--auto-create-streams/--no-auto-create-streams",
    default=True,
    show_default=True,
    help="Streams are created by their first append: a missing stream is waited for. Off: it is an error.",
)
@setting("--dsn", help="postgresql://user@host/db")
@setting("--schema", "schema_name", default="sluice", show_default=True)
def consume(
    *,
    stream: str,
    group: str,
    sink: str | None,
    handler: str | None,
    consumer_id: str | None,
    commit_strategy: str,
    commit_interval: float,
    batch_size: int,
    session_timeout: float,
    start_from: str,
    start_offset: int | None,
    start_time: datetime | None,
    max_attempts: int,
    dead_letter_stream: str | None,
    http_port: int,
    http_host: str,
    retry_backoff: Backoff | float,
    retry_delay: float | None,
    retry_max_delay: float | None,
    retry_max_backoff: float | None,
    retry_min_delay: float,
    retry_jitter: bool,
    sink_timeout: float,
    auto_create_streams: bool,
    dsn: str | None,
    schema_name: str,
) -> None:
    """Consume STREAM as a member of GROUP, delivering each event to --sink or --handler.

    Failed deliveries are retried with fixed or exponential backoff and jitter; after --max-attempts
    the event becomes a dead letter of the group (also appended to the dead-letter stream) and is
    committed past. Dead letters redriven with `sluice dead-letters redrive STREAM --group GROUP`
    are delivered again by the group's members. SIGTERM or SIGINT: finish the event in hand,
    commit, leave the group, exit 0.
    """
    # Imported here: httpx, cloudevents and prometheus-client would slow every other command's start.
    from sluice.services.sinks.handler import load_handler  # noqa: PLC0415
    from sluice.services.sinks.http import validate_sink_url  # noqa: PLC0415
    from sluice.services.workers.consumer import ConsumerSettings  # noqa: PLC0415
    from sluice.services.workers.logs import configure_json_logging  # noqa: PLC0415

    if (sink is None) == (handler is None):
        raise click.UsageError("give exactly one of --sink URL or --handler MODULE:FUNCTION")
    database = require_dsn(dsn)
    checked(stream, "--stream", validate_stream_name)
    checked(group, "--group", validate_group_id)
    member_id = checked(consumer_id or socket.gethostname(), "--consumer-id", validate_group_id)
    dead_letters = checked(
        dead_letter_stream or f"{stream}.{group}.dead-letter",
        "--dead-letter-stream",
        validate_stream_name if dead_letter_stream else lambda _: default_dead_letter_stream(stream, group),
    )
    try:
        options = ConsumerGroupOptions(
            commit_strategy=OffsetCommitStrategy(commit_strategy),
            commit_interval=timedelta(seconds=commit_interval),
            batch_size=batch_size,
            session_timeout=timedelta(seconds=session_timeout),
            start_position=StartPosition(start_from=StartFrom(start_from), offset=start_offset, time=start_time),
        )
    except InvalidArgumentError as error:
        raise click.UsageError(str(error)) from error
    retry = retry_policy(
        max_attempts=max_attempts,
        retry_backoff=retry_backoff,
        retry_delay=retry_delay,
        retry_max_delay=retry_max_delay,
        retry_max_backoff=retry_max_backoff,
        retry_min_delay=retry_min_delay,
        retry_jitter=retry_jitter,
        dead_letter_stream=dead_letters,
    )
    if sink is not None:
        checked(sink, "--sink", validate_sink_url)
    handler_function = None
    if handler is not None:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # handlers next to where the worker starts, as uvicorn does
        handler_function = checked(handler, "--handler", load_handler)
    settings = ConsumerSettings(
        stream_name=stream,
        group_id=group,
        consumer_id=member_id,
        options=options,
        retry=retry,
        worker_commits_each_event=sink is not None and options.commit_strategy is OffsetCommitStrategy.MANUAL,
        http_host=http_host,
        http_port=http_port,
    )
    configure_json_logging()
    run(
        _consume(
            dsn=database,
            schema_name=schema_name,
            auto_create_streams=auto_create_streams,
            settings=settings,
            sink_url=sink,
            sink_timeout=sink_timeout,
            handler=handler_function,
        )
    )


async def _consume(
    *,
    dsn: str,
    schema_name: str,
    auto_create_streams: bool,
    settings: ConsumerSettings,
    sink_url: str | None,
    sink_timeout: float,
    handler: Delivery[ConsumedEvent] | None,
) -> None:
    from sluice.services.sinks.http import HttpSink  # noqa: PLC0415
    from sluice.services.workers.consumer import ConsumerWorker  # noqa: PLC0415
    from sluice.services.workers.health_server import HealthServer  # noqa: PLC0415
    from sluice.services.workers.startup import connect_when_available  # noqa: PLC0415

    # Signals are caught from the start: a stop during startup ends the worker before it joins.
    stop_requested = asyncio.Event()
    workers: list[ConsumerWorker] = []

    def request_stop() -> None:
        stop_requested.set()
        for worker in workers:
            worker.stop()

    loop = asyncio.get_running_loop()
    handled_signals = handle_stop_signals(request_stop)
    health_server: HealthServer | None = None
    try:
        connecting = "connecting to the database"

        async def not_ready_yet() -> tuple[bool, str]:
            return False, connecting

        if settings.http_port:
            health_server = HealthServer(host=settings.http_host, port=settings.http_port, readiness=not_ready_yet)
            await health_server.start()

        def unavailable(error: BaseException) -> None:
            nonlocal connecting
            connecting = f"database unavailable, retrying: {error}"

        store = await connect_when_available(
            lambda: sluice.connect(dsn, schema_name=schema_name, auto_create_streams=auto_create_streams),
            stop_requested,
            on_failure=unavailable,
        )
        if store is None:
            return  # stopped before the database answered
        sink = HttpSink(sink_url, group_id=settings.group_id, timeout=sink_timeout) if sink_url is not None else None
        try:
            delivery: Delivery[ConsumedEvent]
            if sink is not None:
                delivery = sink.deliver
            else:
                assert handler is not None
                delivery = handler
            workers.append(ConsumerWorker(store, settings, delivery, health_server=health_server))
            if stop_requested.is_set():
                workers[0].stop()
            await workers[0].run()
        finally:
            if sink is not None:
                await sink.aclose()
            await store.close()
    finally:
        if health_server is not None:
            await health_server.stop()
        for signal_number in handled_signals:
            loop.remove_signal_handler(signal_number)
