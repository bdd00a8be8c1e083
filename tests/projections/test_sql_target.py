"""Declarative SQL projections end to end on PostgreSQL: the operator's target JSON provisions a table (and
the view readers use), each event type upserts by key with values bound from the payload, hostile values
land as data, and a rebuild (blue/green) produces the same read model as the live one."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sluice import EventData, StreamConfig
from sluice.core.errors import ProjectionTargetError
from sluice.services.projections import (
    ProjectionOptions,
    ProjectionRunner,
    parse_sql_target,
    projection_status,
    sql_projection,
)
from sluice.services.projections.sql_target import definition, json_paths
from sluice.services.projections.sql_target.statements import json_path_parameters, version_table_name
from sluice.storage.postgres.store import PostgresEventStore

pytestmark = pytest.mark.postgres

TARGET: dict[str, Any] = {
    "table": "reporting.order_summary",
    "keyColumns": ["order_id"],
    "upserts": [
        {
            "eventType": "OrderPlaced",
            "columns": {"order_id": "$.order_id", "customer": "$.customer.name", "total": "$.total_cents"},
        },
        {"eventType": "OrderShipped", "columns": {"order_id": "$.order_id", "shipped_to": "$.addresses[0]"}},
    ],
}
HOSTILE = "'); DROP TABLE reporting.order_summary__v1; --"


def placed(order_id: str, customer: str, total: int) -> EventData:
    return EventData("OrderPlaced", {"order_id": order_id, "customer": {"name": customer}, "total_cents": total})


async def fill(store: PostgresEventStore) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    await store.append("orders", [placed(f"o-{n}", f"c-{n % 3}", 100 * n) for n in range(10)])
    await store.append(
        "orders",
        [
            EventData("OrderShipped", {"order_id": "o-1", "addresses": ["Main St 1", "elsewhere"]}),
            placed("o-1", "c-1", 150),  # the same key again: updated, not duplicated
            placed(HOSTILE, HOSTILE, 1),
            EventData("OrderPlaced", {"customer": {"name": "no key"}}),  # skipped: no key value
            EventData("Unrelated", {"order_id": "o-x"}),
        ],
    )


async def read_model(store: PostgresEventStore) -> list[dict[str, Any]]:
    async with store.acquire() as connection:
        rows = await connection.fetch("SELECT * FROM reporting.order_summary ORDER BY order_id")
    return [dict(row) for row in rows]


async def test_a_sql_target_is_provisioned_and_filled_with_bound_values_and_hostile_input_lands_as_data(
    postgres_store: PostgresEventStore,
) -> None:
    await fill(postgres_store)
    projection = sql_projection(
        "order-summary", sources=["orders"], target=json.dumps(TARGET), options=ProjectionOptions(batch_size=4)
    )
    await ProjectionRunner(projection, postgres_store).run_until_caught_up()
    rows = {row["order_id"]: row for row in await read_model(postgres_store)}
    assert len(rows) == 11
    assert rows["o-1"] == {"order_id": "o-1", "customer": '"c-1"', "total": "150", "shipped_to": '"Main St 1"'}
    assert rows["o-2"]["shipped_to"] is None
    assert rows["o-2"]["total"] == "200"
    assert rows[HOSTILE]["customer"] == json.dumps(HOSTILE)
    async with postgres_store.acquire() as connection:
        kinds = await connection.fetch(
            "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'reporting' AND c.relkind IN ('r', 'v') ORDER BY 1"
        )
    assert [tuple(row) for row in kinds] == [("order_summary", "v"), ("order_summary__v1", "r")]


async def test_a_blue_green_rebuild_produces_the_same_read_model_as_the_live_one(
    postgres_store: PostgresEventStore,
) -> None:
    await fill(postgres_store)
    options = ProjectionOptions(batch_size=3)
    projection = sql_projection("order-summary", sources=["orders"], target=TARGET, options=options)
    runner = ProjectionRunner(projection, postgres_store)
    await runner.run_until_caught_up()
    live = await read_model(postgres_store)
    restarted = ProjectionRunner(
        sql_projection("order-summary", sources=["orders"], target=TARGET, options=options), postgres_store
    )
    state = await restarted.start(reset_generation=1)  # as `sluice project --reset-generation 1` does
    assert state.building_version == 2
    assert state.rebuild is not None
    assert state.rebuild.total == 15
    status = await projection_status(postgres_store, "order-summary")
    assert status.active_version == 1
    assert status.rebuild is not None
    assert status.rebuild.percent == 0
    assert await read_model(postgres_store) == live  # readers keep the old version while the new one builds
    await restarted.run_until_caught_up()
    assert await read_model(postgres_store) == live
    status = await projection_status(postgres_store, "order-summary")
    assert status.active_version == 2
    assert status.reset_generation == 1
    assert status.lag_events == 0
    assert status.to_manifest()["rebuild"] == {
        "phase": "Succeeded",
        "eventsDone": 15,
        "eventsTotal": 15,
        "percent": 100,
    }
    async with postgres_store.acquire() as connection:
        assert await connection.fetchval("SELECT to_regclass('reporting.order_summary__v1')") is None


async def test_status_reports_position_and_lag_of_the_sources(postgres_store: PostgresEventStore) -> None:
    await fill(postgres_store)
    runner = ProjectionRunner(
        sql_projection("order-summary", sources=["orders"], target=TARGET, options=ProjectionOptions(batch_size=4)),
        postgres_store,
    )
    await runner.start()
    await runner.step()
    status = await projection_status(postgres_store, "order-summary")
    assert status.lag_events == 11
    assert status.lag_seconds >= 0
    assert status.position is not None
    assert status.to_manifest()["position"] == str(status.position)
    await runner.run_until_caught_up()
    status = await projection_status(postgres_store, "order-summary")
    assert (status.lag_events, status.lag_seconds, status.rebuild) == (0, 0.0, None)


async def test_a_table_of_the_same_name_that_is_not_sluices_view_is_left_alone(
    postgres_store: PostgresEventStore,
) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    async with postgres_store.acquire() as connection:
        await connection.execute("CREATE SCHEMA reporting; CREATE TABLE reporting.order_summary (mine text)")
    runner = ProjectionRunner(sql_projection("order-summary", sources=["orders"], target=TARGET), postgres_store)
    with pytest.raises(ProjectionTargetError, match="not a view"):
        await runner.start()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"table": "Orders"}, "table"),
        ({"table": 'x"; DROP TABLE y; --'}, "table"),
        ({"keyColumns": []}, "keyColumns"),
        ({"keyColumns": ["order_id", "order_id"]}, "repeat"),
        ({"upserts": [{"eventType": "A", "columns": {"order_id": "$.id; DROP"}}]}, "JSON path"),
        ({"upserts": [{"eventType": "A", "columns": {"Bad Column": "$.x", "order_id": "$.id"}}]}, "column name"),
        ({"upserts": [{"eventType": "A", "columns": {"total": "$.total"}}]}, "every key column"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_invalid_targets_raise_a_typed_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ProjectionTargetError, match=message):
        parse_sql_target({**TARGET, **change})


def test_the_identifier_and_path_patterns_are_the_operators() -> None:
    from sluice_operator.models import projections as operator_models  # noqa: PLC0415

    assert definition.COLUMN_NAME_PATTERN.pattern == operator_models.COLUMN_NAME_PATTERN
    assert definition.TABLE_NAME_PATTERN.pattern == operator_models.TABLE_NAME_PATTERN
    assert json_paths.JSON_PATH_PATTERN.pattern == operator_models.JSON_PATH_PATTERN


def test_json_paths_become_strict_sql_json_paths_of_fields_and_indexes() -> None:
    assert json_paths.parse_json_path("$.a.b[1].c") == ("a", "b", 1, "c")
    assert json_paths.parse_json_path("$") == ()
    upsert = parse_sql_target(
        {"table": "t", "keyColumns": ["k"], "upserts": [{"eventType": "E", "columns": {"k": "$.a.b[1].c", "w": "$"}}]}
    ).upserts[0]
    assert json_path_parameters(upsert) == ['strict $."a"."b"[1]."c"', "strict $"]


def test_version_tables_of_long_names_stay_valid_and_distinct() -> None:
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    names = {version_table_name(long_a, 1), version_table_name(long_b, 1), version_table_name(long_a, 2)}
    assert len(names) == 3
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]{0,47}", name) for name in names)


async def test_an_in_place_rebuild_truncates_and_replays_to_the_same_read_model(
    postgres_store: PostgresEventStore,
) -> None:
    await fill(postgres_store)
    runner = ProjectionRunner(sql_projection("order-summary", sources=["orders"], target=TARGET), postgres_store)
    await runner.run_until_caught_up()
    live = await read_model(postgres_store)
    async with postgres_store.acquire() as connection:
        await connection.execute("UPDATE reporting.order_summary__v1 SET total = '0'")  # drifted read model
    state = await runner.rebuild(blue_green=False)
    assert state.active_version == 1
    assert await read_model(postgres_store) == []  # cleared by the reset hook
    state = await runner.run_until_caught_up()
    assert await read_model(postgres_store) == live
    assert state.rebuild is not None
    assert (state.rebuild.done, state.rebuild.total, state.active_version) == (15, 15, 1)


async def test_a_changed_target_keeps_dependent_views_when_it_can_and_adds_new_columns(
    postgres_store: PostgresEventStore,
) -> None:
    await fill(postgres_store)
    await ProjectionRunner(
        sql_projection("order-summary", sources=["orders"], target=TARGET), postgres_store
    ).run_until_caught_up()
    async with postgres_store.acquire() as connection:
        await connection.execute("CREATE VIEW reporting.big_orders AS SELECT order_id FROM reporting.order_summary")
    appended = {
        **TARGET,
        "upserts": [*TARGET["upserts"], {"eventType": "OrderPaid", "columns": {"order_id": "$.id", "paid": "$.at"}}],
    }
    await postgres_store.append("orders", EventData("OrderPaid", {"id": "o-3", "at": "noon"}))
    await ProjectionRunner(
        sql_projection("order-summary", sources=["orders"], target=appended), postgres_store
    ).run_until_caught_up()
    rows = {row["order_id"]: row for row in await read_model(postgres_store)}
    assert rows["o-3"]["paid"] == '"noon"'
    assert rows["o-3"]["total"] == "300"
    async with postgres_store.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM reporting.big_orders") == 11
        await connection.execute("DROP VIEW reporting.big_orders")
    moved = {
        **appended,
        "upserts": [{"eventType": "OrderPaid", "columns": {"order_id": "$.id", "paid": "$.at"}}, *TARGET["upserts"]],
    }
    await ProjectionRunner(
        sql_projection("order-summary", sources=["orders"], target=moved), postgres_store
    ).run_until_caught_up()  # the view's columns moved: it is created again
    async with postgres_store.acquire() as connection:
        columns = await connection.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'reporting.order_summary'::regclass AND attnum > 0"
            " ORDER BY attnum"
        )
    assert [row["attname"] for row in columns] == ["order_id", "paid", "customer", "total", "shipped_to"]


async def test_within_one_batch_a_keys_last_event_wins_and_paths_mean_exactly_what_they_say(
    postgres_store: PostgresEventStore,
) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await postgres_store.append(
        "orders",
        [
            placed("o-1", "first", 1),
            placed("o-2", "other", 2),
            placed("o-1", "second", 3),  # same batch, same key: applied in turn, the last one stays
            EventData("OrderPlaced", {"order_id": None, "customer": {"name": "null key"}}),  # skipped
            EventData("OrderPlaced", {"order_id": 7, "customer": {"name": "number key"}}),  # the key as JSON text
            EventData("OrderShipped", {"order_id": "o-2", "addresses": {"0": "an object, not an array"}}),
        ],
    )
    projection = sql_projection(
        "order-summary", sources=["orders"], target=TARGET, options=ProjectionOptions(batch_size=100)
    )
    await ProjectionRunner(projection, postgres_store).run_until_caught_up()
    rows = {row["order_id"]: row for row in await read_model(postgres_store)}
    assert sorted(rows) == ["7", "o-1", "o-2"]
    assert (rows["o-1"]["customer"], rows["o-1"]["total"]) == ('"second"', "3")
    assert rows["7"]["customer"] == '"number key"'
    assert rows["o-2"]["shipped_to"] is None  # $.addresses[0] on an object leads nowhere (strict path)


async def test_an_upsert_of_key_columns_only_records_each_key_once(postgres_store: PostgresEventStore) -> None:
    """An event type that writes only key columns (a set of seen keys) inserts each key once and leaves
    the rows other event types filled alone (ON CONFLICT DO NOTHING: there is nothing to update)."""
    target = {
        "table": "reporting.order_summary",
        "keyColumns": ["order_id"],
        "upserts": [
            {"eventType": "OrderPlaced", "columns": {"order_id": "$.order_id", "customer": "$.customer.name"}},
            {"eventType": "OrderSeen", "columns": {"order_id": "$.order_id"}},
        ],
    }
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await postgres_store.append("orders", [placed("o-1", "kept", 1), EventData("OrderSeen", {"order_id": "o-2"})])
    await postgres_store.append(
        "orders", [EventData("OrderSeen", {"order_id": "o-1"}), EventData("OrderSeen", {"order_id": "o-2"})]
    )
    projection = sql_projection(
        "order-summary", sources=["orders"], target=target, options=ProjectionOptions(batch_size=100)
    )
    await ProjectionRunner(projection, postgres_store).run_until_caught_up()
    rows = await read_model(postgres_store)
    assert [(row["order_id"], row["customer"]) for row in rows] == [("o-1", '"kept"'), ("o-2", None)]
