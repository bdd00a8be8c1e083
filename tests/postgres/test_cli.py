"""The ``sluice`` command line against a real database: ``migrate`` in the test process
(tests/cli/in_process.py), ``demo`` as a real subprocess (it starts and removes a PostgreSQL of its own)."""

from __future__ import annotations

import asyncpg

from sluice.storage.postgres import migrations
from tests.cli.conftest import run_cli, run_cli_process


async def test_migrate_dry_run_then_migrate_then_up_to_date(fresh_database: str) -> None:
    dry = run_cli("migrate", "--dry-run", dsn=fresh_database)
    assert dry.returncode == 0, dry.stderr
    assert 'CREATE SCHEMA IF NOT EXISTS "sluice"' in dry.stdout
    connection = await asyncpg.connect(fresh_database)
    try:
        assert await connection.fetchval("SELECT to_regclass('sluice.events')") is None  # dry run changed nothing
        applied = run_cli("migrate", dsn=fresh_database)
        assert applied.returncode == 0, applied.stderr
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in migrations.available_migrations())
        assert f"migrated from version 0 to {migrations.latest_version()} ({names})" in applied.stdout
        assert await connection.fetchval("SELECT to_regclass('sluice.events')") is not None
    finally:
        await connection.close()
    again = run_cli("migrate", "--schema", "sluice", dsn=fresh_database)
    assert f"is up to date at version {migrations.latest_version()}" in again.stdout
    dry_again = run_cli("migrate", "--dry-run", dsn=fresh_database)
    assert "is up to date" in dry_again.stdout


def test_migrate_errors_are_clear_and_exit_non_zero() -> None:
    missing = run_cli("migrate")
    assert missing.returncode != 0
    assert "give --dsn or set SLUICE_DSN" in missing.stderr
    unreachable = run_cli("migrate", "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 1
    assert "the database connection failed during connect" in unreachable.stderr
    bad_schema = run_cli("migrate", "--dry-run", "--schema", "Bad;Name")
    assert bad_schema.returncode == 2  # invalid input
    assert "invalid schema name" in bad_schema.stderr
    offline = run_cli("migrate", "--dry-run")
    assert offline.returncode == 0
    assert "CREATE TABLE events" in offline.stdout


def test_demo_runs_end_to_end_on_its_own_postgres() -> None:
    demo = run_cli_process("demo", "--events", "300")
    assert demo.returncode == 0, demo.stderr
    output = demo.stdout
    assert "a live subscription received all 300 in offset order: 0..299" in output
    assert "optimistic concurrency refused a stale writer" in output
    assert "the global log holds 300 events" in output
    assert "deduplicated: True" in output
    assert "moved to the dead-letter queue with its history" in output
    assert "stopped PostgreSQL and removed its data" in output
