"""Schema migrations: numbered files in ``sql/migrations`` plus ``sql/schema.sql`` for fresh databases.

``migrate`` runs in one transaction under a transaction-level advisory lock keyed by the schema name,
so concurrent callers (several pods starting at once) apply each migration exactly once. A fresh
schema gets ``schema.sql`` and every version recorded; an existing one gets the missing migrations
in order. Applied versions are recorded in ``<schema>.schema_migrations``. ``migrate_database`` and
``pending_migration`` open their own connection from a URL (``sluice migrate``), with driver errors
translated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.resources
import re
from collections.abc import AsyncIterator

import asyncpg

from sluice.core.errors import MigrationError
from sluice.core.names import quote_identifier
from sluice.storage.postgres.driver_errors import translated
from sluice.storage.postgres.queries import read_sql_file

_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_SCHEMA_VERSION_LINE = re.compile(r"^-- schema-version: (\d+)$", re.MULTILINE)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)"""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclasses.dataclass(frozen=True, slots=True)
class MigrationPlan:
    """What migrate will do (or did): the SQL in order and the versions it records."""

    schema_name: str
    current_version: int
    target_version: int
    statements: tuple[str, ...]
    versions_to_record: tuple[Migration, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.versions_to_record

    def script(self) -> str:
        """The plan as one SQL script, for ``sluice migrate --dry-run``."""
        return ";\n\n".join(self.statements) + ";\n"


def available_migrations() -> list[Migration]:
    """Every migration shipped with this version of Sluice, in order; versions must be 1..N."""
    folder = importlib.resources.files(__package__).joinpath("sql", "migrations")
    migrations = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match:
            migrations.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    migrations.sort(key=lambda migration: migration.version)
    if [migration.version for migration in migrations] != list(range(1, len(migrations) + 1)):
        raise MigrationError("migration versions must run 1, 2, 3, ... without gaps")
    return migrations


def schema_sql() -> tuple[int, str]:
    """(version it corresponds to, text) of ``schema.sql``."""
    text = read_sql_file("schema.sql")
    match = _SCHEMA_VERSION_LINE.search(text)
    if match is None:
        raise MigrationError("schema.sql lacks its '-- schema-version: N' line")
    return int(match[1]), text


def latest_version() -> int:
    return available_migrations()[-1].version


async def current_version(connection: asyncpg.Connection, schema_name: str) -> int:
    """The newest version recorded in the schema, 0 when Sluice was never installed there."""
    table = await connection.fetchval("SELECT to_regclass(quote_ident($1::text) || '.schema_migrations')", schema_name)
    if table is None:
        return 0
    version = await connection.fetchval(f"SELECT max(version) FROM {quote_identifier(schema_name)}.schema_migrations")
    return int(version or 0)


def plan_migration(schema_name: str, current: int, *, use_schema_file: bool = True) -> MigrationPlan:
    """The statements that bring ``schema_name`` from version ``current`` to the latest."""
    migrations = available_migrations()
    target = migrations[-1].version
    if current > target:
        raise MigrationError(
            f"schema {schema_name!r} is at version {current}, newer than this Sluice ({target}): upgrade Sluice"
        )
    quoted = quote_identifier(schema_name)
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {quoted}",
        f"SET LOCAL search_path TO {quoted}",
        _MIGRATIONS_TABLE,
    ]
    pending = [migration for migration in migrations if migration.version > current]
    schema_version, schema_text = schema_sql()
    if current == 0 and use_schema_file:
        if schema_version != target:
            raise MigrationError(f"schema.sql is at version {schema_version} but the latest migration is {target}")
        statements.append(schema_text.strip())
    else:
        statements.extend(migration.sql.strip() for migration in pending)
    return MigrationPlan(schema_name, current, target, tuple(statements), tuple(pending))


async def migrate(connection: asyncpg.Connection, schema_name: str, *, use_schema_file: bool = True) -> MigrationPlan:
    """Bring the schema to the latest version; returns what was applied (nothing when up to date)."""
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('sluice.migrate.' || $1::text, 0))", schema_name
        )
        current = await current_version(connection, schema_name)
        plan = plan_migration(schema_name, current, use_schema_file=use_schema_file)
        if plan.up_to_date:
            return plan
        for statement in plan.statements:
            await connection.execute(statement)
        await connection.executemany(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            [(migration.version, migration.name) for migration in plan.versions_to_record],
        )
    return plan


async def check_schema(connection: asyncpg.Connection, schema_name: str) -> int:
    """Raise MigrationError unless the schema is at exactly the latest version; return it."""
    current = await current_version(connection, schema_name)
    latest = latest_version()
    if current != latest:
        state = "is not installed" if current == 0 else f"is at version {current}"
        raise MigrationError(
            f"Sluice schema {schema_name!r} {state}; this Sluice needs version {latest}. "
            "Run `sluice migrate` (or connect with migrate=True)."
            if current < latest
            else f"Sluice schema {schema_name!r} is at version {current}, newer than this Sluice ({latest})"
        )
    return current


@contextlib.asynccontextmanager
async def _connection(dsn: str, operation: str) -> AsyncIterator[asyncpg.Connection]:
    """One plain connection (no pool, no store) whose driver errors are Sluice errors."""
    with translated("connect"):
        connection = await asyncpg.connect(dsn)
    try:
        with translated(operation):
            yield connection
    finally:
        await connection.close()


async def migrate_database(dsn: str, schema_name: str) -> MigrationPlan:
    """``migrate`` on a connection of its own to ``dsn``."""
    async with _connection(dsn, "migrate") as connection:
        return await migrate(connection, schema_name)


async def pending_migration(dsn: str, schema_name: str) -> MigrationPlan:
    """What ``migrate_database`` would run now (nothing is changed)."""
    async with _connection(dsn, "the schema version check") as connection:
        return plan_migration(schema_name, await current_version(connection, schema_name))
