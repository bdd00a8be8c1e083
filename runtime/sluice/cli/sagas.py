"""``sluice sagas run|list|show``: run a saga worker, and inspect saga instances and their history."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import click

import sluice
from sluice.cli.durations import Seconds
from sluice.cli.output import emit_object, emit_rows
from sluice.cli.running import handle_stop_signals, open_store, run
from sluice.cli.settings import output_setting, require_dsn, setting, store_settings
from sluice.services.sagas.documents import instance_document, parse_saga_id, record_document
from sluice.services.sagas.repositories import saga_repository
from sluice.store.values.sagas import SagaStatus

SAGA_COLUMNS = ["saga_id", "saga_name", "correlation_id", "status", "current_step", "version", "updated_at"]
HISTORY_COLUMNS = ["recorded_at", "version", "kind", "step", "attempt", "detail"]


@click.group()
def sagas() -> None:
    """Sagas: run a worker, list instances, show one with its history (docs/sagas.md)."""


@sagas.command("run")
@setting("--saga", "saga_spec", required=True, help="The Saga to run, as module:attribute.")
@setting("--worker-id", default=None, help="Consumer id in the saga's groups (default: the host name).")
@setting(
    "--lease-seconds",
    type=Seconds(0.1),
    default=30.0,
    show_default=True,
    help="How long a work message a dead worker held waits before another worker takes it.",
)
@setting(
    "--concurrency",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="How many instances the worker advances at a time.",
)
@store_settings
def run_worker(
    *, saga_spec: str, worker_id: str | None, lease_seconds: float, concurrency: int, dsn: str | None, schema_name: str
) -> None:
    """Run a saga worker until SIGTERM or SIGINT (what it was doing is resumed by the next worker)."""
    from sluice.services.sagas.loading import load_saga  # noqa: PLC0415  (imports the user's module)
    from sluice.services.sagas.worker import run_saga_worker  # noqa: PLC0415

    database = require_dsn(dsn)
    try:
        saga = load_saga(saga_spec)
    except sluice.SluiceError as error:
        raise click.UsageError(str(error)) from error

    async def body() -> None:
        loop = asyncio.get_running_loop()
        worker = asyncio.current_task()
        assert worker is not None
        handled_signals = handle_stop_signals(worker.cancel)
        try:
            async with open_store(database, schema_name) as store:
                await run_saga_worker(
                    store,
                    saga,
                    worker_id=worker_id,
                    lease=timedelta(seconds=lease_seconds),
                    concurrency=concurrency,
                )
        finally:
            for signal_number in handled_signals:
                loop.remove_signal_handler(signal_number)

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        run(body())


@sagas.command("list")
@click.option("--saga", "saga_name", default=None, help="Only instances of this saga.")
@click.option(
    "--status",
    "statuses",
    type=click.Choice([status.value for status in SagaStatus]),
    multiple=True,
    help="Repeatable.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@store_settings
@output_setting
def list_sagas(
    *, saga_name: str | None, statuses: tuple[str, ...], limit: int, dsn: str | None, schema_name: str, output: str
) -> None:
    """List saga instances, newest first."""
    database = require_dsn(dsn)

    async def body() -> None:
        async with open_store(database, schema_name) as store:
            instances = await saga_repository(store).list(
                saga_name=saga_name, statuses=[SagaStatus(status) for status in statuses] or None, limit=limit
            )
        emit_rows([instance_document(instance) for instance in instances], SAGA_COLUMNS, output)

    run(body())


@sagas.command("show")
@click.argument("saga_id")
@click.option("--saga", "saga_name", default=None, help="Read SAGA_ID as a correlation id of this saga.")
@store_settings
@output_setting
def show_saga(*, saga_id: str, saga_name: str | None, dsn: str | None, schema_name: str, output: str) -> None:
    """Show one saga instance (by id, or by correlation id with --saga) and its history."""
    database = require_dsn(dsn)

    async def body() -> None:
        identifier = parse_saga_id(saga_id, saga_name)
        async with open_store(database, schema_name) as store:
            record = await saga_repository(store).get(identifier)
        document = record_document(record)
        if output == "json":
            emit_object(document, output)
            return
        history = document.pop("history")
        emit_object(document, output)
        click.echo()
        emit_rows(history, HISTORY_COLUMNS, output)

    run(body())
