"""The ``sluice`` command line. Settings come from flags or ``SLUICE_*`` environment variables.

Commands so far: ``migrate`` (apply or print the schema migrations) and ``demo`` (a tour of the
runtime on a throwaway PostgreSQL it starts itself).
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import click

from sluice.backends.postgres import migrations
from sluice.errors import SluiceError


@click.group(context_settings={"auto_envvar_prefix": "SLUICE", "help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sluice")
def main() -> None:
    """Sluice: Kubernetes-native event streaming on PostgreSQL."""


@main.command()
@click.option("--dsn", envvar="SLUICE_DSN", help="PostgreSQL URL (or SLUICE_DSN).")
@click.option("--schema", "schema_name", envvar="SLUICE_SCHEMA", default="sluice", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run, change nothing.")
def migrate(dsn: str | None, schema_name: str, dry_run: bool) -> None:
    """Bring Sluice's schema to the latest version (under an advisory lock; safe to run concurrently)."""
    try:
        asyncio.run(_migrate(dsn, schema_name, dry_run))
    except SluiceError as error:
        raise click.ClickException(str(error)) from error
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"cannot reach the database: {error}") from error


async def _migrate(dsn: str | None, schema_name: str, dry_run: bool) -> None:
    if dsn is None:
        if not dry_run:
            raise click.UsageError("give --dsn or set SLUICE_DSN (or use --dry-run to print the SQL)")
        click.echo(migrations.plan_migration(schema_name, 0).script(), nl=False)
        return
    connection = await asyncpg.connect(dsn)
    try:
        if dry_run:
            current = await migrations.current_version(connection, schema_name)
            plan = migrations.plan_migration(schema_name, current)
            if plan.up_to_date:
                click.echo(f"-- schema {schema_name!r} is up to date at version {current}")
            else:
                click.echo(plan.script(), nl=False)
            return
        plan = await migrations.migrate(connection, schema_name)
    finally:
        await connection.close()
    if plan.up_to_date:
        click.echo(f"schema {schema_name!r} is up to date at version {plan.target_version}")
    else:
        click.echo(
            f"schema {schema_name!r} migrated from version {plan.current_version} to {plan.target_version} "
            f"({', '.join(f'{m.version:04d}_{m.name}' for m in plan.versions_to_record)})"
        )


@main.command()
@click.option("--events", default=1000, show_default=True, help="How many events the tour appends.")
def demo(events: int) -> None:
    """Start a throwaway PostgreSQL and tour streams, subscriptions, the global log and queues."""
    from sluice.demo import run_demo  # noqa: PLC0415  (keeps `sluice --help` fast)

    try:
        asyncio.run(run_demo(events=events))
    except SluiceError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    sys.exit(main())
