"""The SQL target's view is repointed by one statement (``sql_target_point_view``): replaced in place when
the new version's columns extend the old ones (views that users built on it keep working), dropped and
created again when they moved (PostgreSQL refuses that replacement with SQLSTATE 42P16), all inside the
caller's transaction, which stays usable, and without the driver ever seeing the refusal."""

from __future__ import annotations

import pytest

from sluice.services.projections.queries import projection_query
from sluice.storage.postgres.store import PostgresEventStore

pytestmark = pytest.mark.postgres


def point_view(table: str, columns: str) -> str:
    return projection_query("sql_target_point_view").format(
        view="view_test.summary", columns=columns, table=f"view_test.{table}"
    )


async def test_the_view_is_replaced_in_place_or_recreated_when_its_columns_moved(
    postgres_store: PostgresEventStore,
) -> None:
    async with postgres_store.acquire() as connection:
        await connection.execute("CREATE SCHEMA view_test")
        await connection.execute("CREATE TABLE view_test.summary__v1 (a int, b int)")
        await connection.execute("CREATE TABLE view_test.summary__v2 (a int, b int, c int)")
        await connection.execute("CREATE TABLE view_test.summary__v3 (b int, a int)")
        await connection.execute("INSERT INTO view_test.summary__v3 VALUES (2, 1)")

        await connection.execute(point_view("summary__v1", "a, b"))
        await connection.execute("CREATE VIEW view_test.built_on_it AS SELECT a FROM view_test.summary")
        await connection.execute(point_view("summary__v2", "a, b, c"))  # columns appended: in place
        assert await connection.fetchval("SELECT count(*) FROM pg_views WHERE viewname = 'built_on_it'") == 1

        await connection.execute("DROP VIEW view_test.built_on_it")
        async with connection.transaction():
            await connection.execute(point_view("summary__v3", "b, a"))  # columns moved: recreated
            assert await connection.fetchrow("SELECT * FROM view_test.summary") == (2, 1)
        columns = await connection.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'view_test.summary'::regclass AND attnum > 0 "
            "ORDER BY attnum"
        )
        assert [row["attname"] for row in columns] == ["b", "a"]
