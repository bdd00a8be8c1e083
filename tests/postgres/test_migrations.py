"""The migration chain, schema.sql, the advisory lock and the schema check at connect."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest

import sluice
from sluice import MigrationError
from sluice.storage.postgres import migrations
from sluice.storage.postgres.queries import parse_named_queries, queries
from tests.conftest import with_database


def schema_dump(bindir: str, dsn: str, schema: str) -> str:
    result = subprocess.run(
        [str(Path(bindir) / "pg_dump"), "--schema-only", "--no-owner", "--schema", schema, dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    # pg_dump marks its output with random \\restrict keys; comments and those differ between runs.
    lines = [line for line in result.stdout.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict"))]
    return "\n".join(line for line in lines if line.strip())


async def test_migration_chain_builds_the_same_database_as_schema_sql(
    fresh_database: str, postgres_admin_dsn: str, embedded_server_bindir: str
) -> None:
    connection = await asyncpg.connect(fresh_database)
    try:
        chain = await migrations.migrate(connection, "by_chain", use_schema_file=False)
        fresh = await migrations.migrate(connection, "by_schema_file")
    finally:
        await connection.close()
    assert [m.version for m in chain.versions_to_record] == [m.version for m in migrations.available_migrations()]
    assert fresh.versions_to_record == chain.versions_to_record
    by_chain = schema_dump(embedded_server_bindir, fresh_database, "by_chain").replace("by_chain", "SCHEMA")
    by_file = schema_dump(embedded_server_bindir, fresh_database, "by_schema_file").replace("by_schema_file", "SCHEMA")
    assert "CREATE TABLE SCHEMA.events" in by_chain
    assert by_chain == by_file


async def test_migrate_is_idempotent_and_records_versions(fresh_database: str) -> None:
    connection = await asyncpg.connect(fresh_database)
    try:
        first = await migrations.migrate(connection, "sluice")
        second = await migrations.migrate(connection, "sluice")
        versions = await connection.fetch("SELECT version, name FROM sluice.schema_migrations ORDER BY version")
    finally:
        await connection.close()
    assert not first.up_to_date
    assert second.up_to_date
    assert [(row["version"], row["name"]) for row in versions] == [
        (m.version, m.name) for m in migrations.available_migrations()
    ]


async def test_concurrent_migrations_apply_once(fresh_database: str) -> None:
    connections = [await asyncpg.connect(fresh_database) for _ in range(4)]
    try:
        plans = await asyncio.gather(*(migrations.migrate(c, "sluice") for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    assert sum(1 for plan in plans if not plan.up_to_date) == 1


async def test_connect_refuses_an_unmigrated_database_unless_asked_to_migrate(fresh_database: str) -> None:
    with pytest.raises(MigrationError, match="Run `sluice migrate`"):
        await sluice.connect(fresh_database)
    store = await sluice.connect(fresh_database, migrate=True)
    await store.append("s", sluice.EventData("E", {}))
    await store.close()
    async with await sluice.connect(fresh_database, schema_name="sluice") as again:
        assert (await again.get_stream("s")).head == 1


async def test_a_custom_schema_name_keeps_everything_inside_it(fresh_database: str) -> None:
    async with await sluice.connect(fresh_database, schema_name="tenant_a", migrate=True) as store:
        await store.append("s", sluice.EventData("E", {}))
    connection = await asyncpg.connect(fresh_database)
    try:
        schemas = await connection.fetch(
            "SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_name = 'events'"
        )
    finally:
        await connection.close()
    assert [row["table_schema"] for row in schemas] == ["tenant_a"]


def test_dry_run_plan_prints_sql_without_touching_anything() -> None:
    plan = migrations.plan_migration("sluice", 0, use_schema_file=False)
    script = plan.script()
    assert script.startswith('CREATE SCHEMA IF NOT EXISTS "sluice";')
    assert "CREATE TABLE events" in script
    with pytest.raises(sluice.InvalidNameError):
        migrations.plan_migration('bad"; DROP TABLE x; --', 0)
    with pytest.raises(MigrationError, match="newer than this Sluice"):
        migrations.plan_migration("sluice", 999)


def test_named_queries_all_parse() -> None:
    assert "append_events" in queries()
    with pytest.raises(ValueError, match="defined twice"):
        parse_named_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")


async def test_with_database_helper_keeps_credentials() -> None:
    assert with_database("postgresql://u@h:1/a", "b") == "postgresql://u@h:1/b"


async def _install_up_to(connection: asyncpg.Connection, version: int) -> None:
    """Inside the caller's transaction: schema ``sluice`` at ``version``, as a Sluice of that version left it."""
    applied = [m for m in migrations.available_migrations() if m.version <= version]
    await connection.execute("CREATE SCHEMA sluice; SET LOCAL search_path TO sluice")
    for migration in applied:
        await connection.execute(migration.sql)
    await connection.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    await connection.executemany(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [(m.version, m.name) for m in applied]
    )


async def test_migration_3_keeps_existing_groups_and_streams_broadcast(fresh_database: str) -> None:
    # A database at version 2, with a group that has committed: the upgrade must not lose its position.
    connection = await asyncpg.connect(fresh_database)
    try:
        async with connection.transaction():
            await _install_up_to(connection, 2)
            await connection.execute(
                "INSERT INTO streams (name, type, partitions) VALUES ('orders', 'persistent', 2);"
                "INSERT INTO stream_partitions (stream_id, partition, next_offset)"
                " SELECT stream_id, p, 10 FROM streams, generate_series(0, 1) AS p;"
                "INSERT INTO consumer_groups (stream_id, name) SELECT stream_id, 'g' FROM streams;"
                "INSERT INTO consumer_group_partitions (group_key, partition, committed_offset)"
                " SELECT group_key, p, 3 + p FROM consumer_groups, generate_series(0, 1) AS p"
            )
        plan = await migrations.migrate(connection, "sluice")
        rows = await connection.fetch(
            "SELECT partition, committed_offset, claimed_offset FROM sluice.consumer_group_partitions ORDER BY 1"
        )
    finally:
        await connection.close()
    assert [m.version for m in plan.versions_to_record] == [
        m.version for m in migrations.available_migrations() if m.version >= 3
    ]
    assert [(row["committed_offset"], row["claimed_offset"]) for row in rows] == [(3, 3), (4, 4)]
    async with await sluice.connect(fresh_database) as store:
        assert (await store.get_stream("orders")).delivery is sluice.DeliverySemantics.BROADCAST
        described = await store.consumer_groups().describe("orders", "g")
        assert [p.committed_offset for p in described.partitions] == [3, 4]


async def test_the_append_of_earlier_versions_still_works_during_a_rolling_upgrade(fresh_database: str) -> None:
    """Processes of a version before migration 0012 call ``append_events`` with one correlation id per batch;
    it stays and gives every event of the batch that id, appended like the new per-event function."""
    store = await sluice.connect(fresh_database, migrate=True)
    try:
        await store.append("orders", sluice.EventData("Placed", {"n": 0}))
        connection = await asyncpg.connect(fresh_database)
        try:
            first = await connection.fetchval(
                "SELECT sluice.append_events('orders', 0, NULL, false, $1::uuid[], ARRAY['Placed', 'Placed'],"
                " ARRAY[1, 1], ARRAY['application/json', 'application/json'], $2::bytea[],"
                " ARRAY['{}', '{}']::jsonb[], 'old-pod')",
                [uuid.uuid4(), uuid.uuid4()],
                [b'{"n": 1}', b'{"n": 2}'],
            )
        finally:
            await connection.close()
        assert first == 1
        stored = [event async for event in store.read_stream("orders")]
        assert [(event.offset, event.data, event.correlation_id) for event in stored] == [
            (0, {"n": 0}, None),
            (1, {"n": 1}, "old-pod"),
            (2, {"n": 2}, "old-pod"),
        ]
    finally:
        await store.close()


async def test_migration_14_closes_the_counter_rows_of_archived_and_deleted_streams(fresh_database: str) -> None:
    """0014 keeps "takes appends" on each partition's counter row (the one-statement append re-reads it after
    waiting for its lock): a database at version 13 with an open, an archived and a soft-deleted stream gets
    the flag of each; the archived stream refuses appends, and takes them again once an earlier version's
    unarchive (which knows nothing of the flag) clears its mark: the streams_reopened trigger reopens it."""
    connection = await asyncpg.connect(fresh_database)
    try:
        async with connection.transaction():
            await _install_up_to(connection, 13)
            await connection.execute(
                "INSERT INTO streams (name, type, partitions, archived_at, deleted_at) VALUES"
                " ('open', 'persistent', 2, NULL, NULL),"
                " ('archived', 'persistent', 2, clock_timestamp(), NULL),"
                " ('deleted', 'persistent', 1, NULL, clock_timestamp());"
                "INSERT INTO stream_partitions (stream_id, partition)"
                " SELECT stream_id, p FROM streams, generate_series(0, partitions - 1) AS p"
            )
        plan = await migrations.migrate(connection, "sluice")
        flags = await connection.fetch(
            "SELECT s.name, p.partition, p.accepts_appends FROM sluice.stream_partitions p"
            " JOIN sluice.streams s USING (stream_id) ORDER BY 1, 2"
        )
    finally:
        await connection.close()
    assert [m.version for m in plan.versions_to_record] == [14]
    assert [(row["name"], row["partition"], row["accepts_appends"]) for row in flags] == [
        ("archived", 0, False),
        ("archived", 1, False),
        ("deleted", 0, False),
        ("open", 0, True),
        ("open", 1, True),
    ]
    async with await sluice.connect(fresh_database) as store:
        await store.append("open", sluice.EventData("Placed", {"n": 0}), partition=1)
        with pytest.raises(sluice.StreamArchivedError):
            await store.append("archived", sluice.EventData("Placed", {"n": 0}))
        earlier_version = await asyncpg.connect(fresh_database)
        try:
            await earlier_version.execute(
                "UPDATE sluice.streams SET archived_at = NULL, archived_by = NULL WHERE name = 'archived'"
            )
        finally:
            await earlier_version.close()
        assert (await store.append("archived", sluice.EventData("Placed", {"n": 0}), partition=1)).offsets == (0,)
