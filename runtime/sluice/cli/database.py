"""``sluice migrate`` (apply or print the schema migrations) and ``sluice demo`` (the tour)."""

from __future__ import annotations

import asyncio

import click

from sluice.cli.running import run
from sluice.cli.settings import setting
from sluice.core.errors import SluiceError
from sluice.storage.postgres import migrations


@click.command()
@setting("--dsn", help="PostgreSQL URL.")
@setting("--schema", "schema_name", default="sluice", show_default=True, help="PostgreSQL schema of Sluice's tables.")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run, change nothing.")
def migrate(dsn: str | None, schema_name: str, dry_run: bool) -> None:
    """Bring Sluice's schema to the latest version (under an advisory lock; safe to run concurrently)."""
    run(_migrate(dsn, schema_name, dry_run))


async def _migrate(dsn: str | None, schema_name: str, dry_run: bool) -> None:
    if dsn is None:
        if not dry_run:
            raise click.UsageError("give --dsn or set SLUICE_DSN (or use --dry-run to print the SQL)")
        click.echo(migrations.plan_migration(schema_name, 0).script(), nl=False)
        return
    if dry_run:
        await _print_pending(dsn, schema_name)
        return
    plan = await migrations.migrate_database(dsn, schema_name)
    if plan.up_to_date:
        click.echo(f"schema {schema_name!r} is up to date at version {plan.target_version}")
    else:
        click.echo(
            f"schema {schema_name!r} migrated from version {plan.current_version} to {plan.target_version} "
            f"({', '.join(f'{m.version:04d}_{m.name}' for m in plan.versions_to_record)})"
        )


async def _print_pending(dsn: str, schema_name: str) -> None:
    """The SQL ``migrate`` would run now on the database at ``dsn`` (a comment when up to date)."""
    pending = await migrations.pending_migration(dsn, schema_name)
    if pending.up_to_date:
        click.echo(f"-- schema {schema_name!r} is up to date at version {pending.current_version}")
    else:
        click.echo(pending.script(), nl=False)


@click.command()
@click.option("--events", default=1000, show_default=True, help="How many events the tour appends.")
def demo(events: int) -> None:
    """Start a throwaway PostgreSQL and tour streams, subscriptions, the global log and queues."""
    from sluice.cli.demo import run_demo  # noqa: PLC0415  (keeps `sluice --help` fast)

    try:
        asyncio.run(run_demo(events=events))
    except SluiceError as error:
        raise click.ClickException(str(error)) from error
