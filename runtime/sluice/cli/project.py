"""``sluice project``: run one projection — a declarative SQL target or a Python entrypoint — until SIGTERM.
This command line is a contract with the operator, whose Projection pods run it (see docs/projections.md).

Everything is checked before anything is touched: a usage error (exit 2) has no side effect.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

import click

import sluice
from sluice.cli.consume import checked
from sluice.cli.running import handle_stop_signals, run
from sluice.cli.settings import require_dsn, setting
from sluice.core.errors import InvalidArgumentError
from sluice.core.names import validate_stream_name
from sluice.services.projections.options import MAXIMUM_BATCH_SIZE, ProjectionOptions, ProjectionStart
from sluice.services.projections.projection import Projection, validate_projection_name

if TYPE_CHECKING:
    from sluice.services.projections.worker import ProjectionSettings


@click.command()
@setting("--name", required=True, help="The projection's name (its checkpoint is kept under it).")
@setting("--source", "sources", multiple=True, required=True, help="A stream to project; repeat for several.")
@setting(
    "--sql-target",
    help="A declarative SQL target as JSON: table, keyColumns, upserts, optionally columnTypes and indexes (see docs).",
)
@setting("--handler", help="'module:attribute': a Projection, or a function called with each batch.")
@setting("--batch-size", type=click.IntRange(1, MAXIMUM_BATCH_SIZE), default=100, show_default=True)
@setting(
    "--reset-generation",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Raise it above the stored one to rebuild the projection from the start of its sources.",
)
@setting(
    "--start-from",
    type=click.Choice([start.value for start in ProjectionStart]),
    default=ProjectionStart.BEGINNING.value,
    show_default=True,
    help="Where a new projection starts (ignored once it has a checkpoint).",
)
@setting("--http-port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Health; 0 = off.")
@setting("--http-host", default="0.0.0.0", show_default=True, help="Address of the health endpoint.")  # noqa: S104
@setting("--dsn", help="postgresql://user@host/db")
@setting("--schema", "schema_name", default="sluice", show_default=True)
def project(
    *,
    name: str,
    sources: tuple[str, ...],
    sql_target: str | None,
    handler: str | None,
    batch_size: int,
    reset_generation: int,
    start_from: str,
    http_port: int,
    http_host: str,
    dsn: str | None,
    schema_name: str,
) -> None:
    """Keep projection NAME up to date from the --source streams (read together in global log order).

    With --sql-target, Sluice creates the table (a view on <table>__v<N>) and upserts each event by key;
    with --handler, your code applies each batch. SIGTERM or SIGINT: commit the batch in hand, exit 0.
    """
    from sluice.services.projections.entrypoints import load_projection  # noqa: PLC0415
    from sluice.services.projections.sql_target import parse_sql_target, sql_projection  # noqa: PLC0415
    from sluice.services.projections.worker import ProjectionSettings  # noqa: PLC0415
    from sluice.services.workers.logs import configure_json_logging  # noqa: PLC0415

    if (sql_target is None) == (handler is None):
        raise click.UsageError("give exactly one of --sql-target JSON or --handler MODULE:ATTRIBUTE")
    database = require_dsn(dsn)
    checked(name, "--name", validate_projection_name)
    for source in sources:
        checked(source, "--source", validate_stream_name)
    try:
        options = ProjectionOptions(batch_size=batch_size, start=ProjectionStart(start_from))
    except InvalidArgumentError as error:
        raise click.UsageError(str(error)) from error
    projection: Projection
    if sql_target is not None:
        target = checked(sql_target, "--sql-target", parse_sql_target)
        projection = checked(
            name, "--sql-target", lambda _: sql_projection(name, sources=sources, target=target, options=options)
        )
    else:
        assert handler is not None
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # handlers next to where the worker starts, as consume does
        projection = checked(
            handler, "--handler", lambda spec: load_projection(spec, name=name, sources=sources, options=options)
        )
    settings = ProjectionSettings(reset_generation=reset_generation, http_host=http_host, http_port=http_port)
    configure_json_logging()
    run(_project(dsn=database, schema_name=schema_name, projection=projection, settings=settings))


async def _project(*, dsn: str, schema_name: str, projection: Projection, settings: ProjectionSettings) -> None:
    from sluice.services.projections.worker import ProjectionWorker  # noqa: PLC0415

    stop_requested = asyncio.Event()
    workers: list[ProjectionWorker] = []

    def request_stop() -> None:
        stop_requested.set()
        for worker in workers:
            worker.stop()

    loop = asyncio.get_running_loop()
    handled_signals = handle_stop_signals(request_stop)
    try:
        store = await sluice.connect(dsn, schema_name=schema_name)
        try:
            workers.append(ProjectionWorker(store, projection, settings))
            if stop_requested.is_set():
                workers[0].stop()
            await workers[0].run()
        finally:
            await store.close()
    finally:
        for signal_number in handled_signals:
            loop.remove_signal_handler(signal_number)
