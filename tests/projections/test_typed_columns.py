"""Typed columns of declarative SQL projections (issue 20): each declared type round-trips through
PostgreSQL's conversion in the upsert, an event whose value does not convert is dead-lettered with the
reason, counted in status and metrics, and passed (the projection goes on), a type change is built into a
new version blue/green while the old one serves, declared indexes exist on every version's table, and bad
type names or index specs are refused with a typed error."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import secrets
import uuid
from typing import Any, get_args

import pytest
from prometheus_client import REGISTRY

from sluice import EventData, StreamConfig
from sluice.core.errors import ProjectionTargetError
from sluice.services.projections import (
    ProjectionOptions,
    ProjectionRunner,
    parse_sql_target,
    projection_dead_letters,
    projection_status,
    sql_projection,
)
from sluice.services.projections.sql_target import COLUMN_TYPES, SqlIndex
from sluice.storage.postgres.store import PostgresEventStore
from tests.cli.conftest import run_cli

pytestmark = pytest.mark.postgres

EVERY_TYPE: dict[str, Any] = {
    "table": "reporting.typed",
    "keyColumns": ["id"],
    "columnTypes": {
        "id": "uuid",
        "name": "text",
        "big": "bigint",
        "small": "integer",
        "amount": "numeric",
        "flag": "boolean",
        "at": "timestamptz",
        "other": "uuid",
        "document": "jsonb",
    },
    "indexes": [{"columns": ["name"]}, {"columns": ["flag", "at"]}],
    "upserts": [
        {
            "eventType": "Typed",
            "columns": {
                "id": "$.id",
                "name": "$.name",
                "big": "$.big",
                "small": "$.small",
                "amount": "$.amount",
                "flag": "$.flag",
                "at": "$.at",
                "other": "$.other",
                "document": "$.document",
                "untyped": "$.document",
            },
        }
    ],
}
ORDERS: dict[str, Any] = {
    "table": "orders_by_id",
    "keyColumns": ["order_id"],
    "upserts": [
        {
            "eventType": "OrderPlaced",
            "columns": {"order_id": "$.order_id", "customer_id": "$.customer_id", "total": "$.total"},
        }
    ],
}
TYPED_ORDERS: dict[str, Any] = {**ORDERS, "columnTypes": {"customer_id": "text", "total": "numeric"}}
ID_1, ID_2, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def order(order_id: str, customer_id: str, total: object) -> EventData:
    return EventData("OrderPlaced", {"order_id": order_id, "customer_id": customer_id, "total": total})


def dead_lettered_total(name: str) -> float:
    value = REGISTRY.get_sample_value("sluice_projection_events_dead_lettered_total", {"projection": name})
    return value or 0.0


async def fetch(store: PostgresEventStore, sql: str) -> list[dict[str, Any]]:
    async with store.acquire() as connection:
        return [dict(row) for row in await connection.fetch(sql)]


async def test_every_column_type_round_trips_and_the_table_has_the_declared_types_and_indexes(
    postgres_store: PostgresEventStore,
) -> None:
    await postgres_store.create_stream(StreamConfig(name="typed"))
    full = {
        "id": str(ID_1),
        "name": "Ada Lovelace",
        "big": 9007199254740993,  # 2**53 + 1: not a float on the way
        "small": -42,
        "amount": 12.50,
        "flag": True,
        "at": "2026-12-07T03:30:00+01:00",
        "other": str(OTHER),
        "document": {"lines": [1, 2], "note": "x"},
    }
    sparse = {"id": str(ID_2), "name": None, "big": "17", "amount": 1e-7}  # null, absent, a numeric string
    await postgres_store.append("typed", [EventData("Typed", full), EventData("Typed", sparse)])
    projection = sql_projection("typed", sources=["typed"], target=EVERY_TYPE)
    await ProjectionRunner(projection, postgres_store).run_until_caught_up()

    rows = {row["id"]: row for row in await fetch(postgres_store, "SELECT * FROM reporting.typed")}
    assert rows[ID_1] == {
        "id": ID_1,
        "name": "Ada Lovelace",
        "big": 9007199254740993,
        "small": -42,
        "amount": decimal.Decimal("12.5"),
        "flag": True,
        "at": datetime.datetime(2026, 12, 7, 2, 30, tzinfo=datetime.UTC),
        "other": OTHER,
        "document": '{"note": "x", "lines": [1, 2]}',
        "untyped": '{"note": "x", "lines": [1, 2]}',
    }
    assert rows[ID_2] == {
        "id": ID_2,
        "name": None,
        "big": 17,
        "small": None,
        "amount": decimal.Decimal("1E-7"),
        "flag": None,
        "at": None,
        "other": None,
        "document": None,
        "untyped": None,
    }
    types = await fetch(
        postgres_store,
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
        " WHERE attrelid = 'reporting.typed__v1'::regclass AND attnum > 0 ORDER BY attnum",
    )
    assert {row["attname"]: row["type"] for row in types} == {
        "id": "uuid",
        "name": "text",
        "big": "bigint",
        "small": "integer",
        "amount": "numeric",
        "flag": "boolean",
        "at": "timestamp with time zone",
        "other": "uuid",
        "document": "jsonb",
        "untyped": "jsonb",
    }
    indexes = await fetch(
        postgres_store, "SELECT indexdef FROM pg_indexes WHERE tablename = 'typed__v1' AND indexdef NOT LIKE '%UNIQUE%'"
    )
    assert sorted(row["indexdef"].split(" USING ")[1] for row in indexes) == ["btree (flag, at)", "btree (name)"]
    total = await fetch(postgres_store, "SELECT sum(amount) AS total FROM reporting.typed WHERE flag IS NOT false")
    assert total == [{"total": decimal.Decimal("12.5000001")}]


async def test_a_value_that_does_not_convert_is_dead_lettered_with_its_reason_counted_and_passed(
    postgres_store: PostgresEventStore,
) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await postgres_store.append(
        "orders",
        [
            order("o-1", "ada", 10),
            order("o-2", "bob", "lots"),  # not a number
            order("o-1", "ada", "12,5"),  # o-1's last event in the batch does not convert: 10 stays
            EventData("OrderPlaced", {"customer_id": "nobody", "total": 1}),  # no key
            EventData("OrderPlaced", b"\x00binary"),  # not JSON
            order("o-3", "cy", 7),
        ],
    )
    before = dead_lettered_total("orders")
    runner = ProjectionRunner(
        sql_projection("orders", sources=["orders"], target=TYPED_ORDERS, options=ProjectionOptions(batch_size=100)),
        postgres_store,
    )
    state = await runner.run_until_caught_up()
    assert state.active.events_applied == 6  # every event passed, the bad ones included
    rows = await fetch(postgres_store, "SELECT * FROM public.orders_by_id ORDER BY order_id")
    assert rows == [
        {"order_id": "o-1", "customer_id": "ada", "total": decimal.Decimal(10)},
        {"order_id": "o-3", "customer_id": "cy", "total": decimal.Decimal(7)},
    ]
    status = await projection_status(postgres_store, "orders")
    assert status.dead_letters == 4
    assert status.to_manifest()["deadLetters"] == 4
    assert status.lag_events == 0
    assert dead_lettered_total("orders") - before == 4
    letters = await projection_dead_letters(postgres_store, "orders")
    assert [(letter.offset, letter.reason) for letter in letters] == [
        (1, 'upsert of OrderPlaced: column total (numeric): invalid input syntax for type numeric: "lots"'),
        (2, 'upsert of OrderPlaced: column total (numeric): invalid input syntax for type numeric: "12,5"'),
        (3, "upsert of OrderPlaced: key column order_id has no value"),
        (4, "its payload is not JSON (content type application/octet-stream)"),
    ]
    assert {letter.stream_name for letter in letters} == {"orders"}

    await postgres_store.append("orders", [order("o-2", "bob", 3), order("o-4", "dee", "99999999999999999999.5")])
    await runner.run_until_caught_up()  # not stuck: later events of the same key apply
    totals = {row["order_id"]: row["total"] for row in await fetch(postgres_store, "SELECT * FROM public.orders_by_id")}
    assert totals["o-2"] == 3
    assert totals["o-4"] == decimal.Decimal("99999999999999999999.5")
    assert (await projection_status(postgres_store, "orders")).dead_letters == 4


async def test_a_batch_that_is_all_dead_letters_commits_its_checkpoint(postgres_store: PostgresEventStore) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await postgres_store.append("orders", [order(f"o-{n}", "ada", "NaN-ish") for n in range(5)])
    runner = ProjectionRunner(
        sql_projection("orders", sources=["orders"], target=TYPED_ORDERS, options=ProjectionOptions(batch_size=2)),
        postgres_store,
    )
    state = await runner.run_until_caught_up()
    assert state.active.events_applied == 5
    assert await fetch(postgres_store, "SELECT * FROM public.orders_by_id") == []
    assert (await projection_status(postgres_store, "orders")).dead_letters == 5


async def test_values_too_long_for_an_index_entry_are_dead_lettered_instead_of_failing_the_batch(
    postgres_store: PostgresEventStore,
) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    incompressible = secrets.token_hex(2000)  # 4,000 bytes: PostgreSQL would refuse it in a B-tree entry
    await postgres_store.append(
        "orders",
        [
            order("o-1", "ada", 1),
            order("o-2", incompressible, 2),
            order(incompressible, "bob", 3),
            order("o-4", "cy", 4),
        ],
    )
    indexed = {**TYPED_ORDERS, "indexes": [{"columns": ["customer_id"]}]}
    runner = ProjectionRunner(sql_projection("orders", sources=["orders"], target=indexed), postgres_store)
    await runner.run_until_caught_up()
    rows = await fetch(postgres_store, "SELECT order_id FROM public.orders_by_id ORDER BY 1")
    assert [row["order_id"] for row in rows] == ["o-1", "o-4"]
    letters = await projection_dead_letters(postgres_store, "orders")
    assert [letter.reason for letter in letters] == [
        "upsert of OrderPlaced: the values of index (customer_id) are 4000 bytes long, more than an index entry "
        "holds (2600)",
        "upsert of OrderPlaced: the values of index (order_id) are 4000 bytes long, more than an index entry "
        "holds (2600)",
    ]


async def test_a_type_change_rebuilds_into_a_new_version_while_the_old_one_serves(
    postgres_store: PostgresEventStore,
) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await postgres_store.append("orders", [order("o-1", "ada", 1000), order("o-2", "bob", 250), order("o-3", "ada", 5)])
    await ProjectionRunner(
        sql_projection("orders", sources=["orders"], target=ORDERS), postgres_store
    ).run_until_caught_up()
    untyped = await fetch(postgres_store, "SELECT * FROM public.orders_by_id ORDER BY order_id")
    assert untyped[0] == {"order_id": "o-1", "customer_id": '"ada"', "total": "1000"}  # the default: jsonb

    typed = {**TYPED_ORDERS, "indexes": [{"columns": ["customer_id"]}]}
    runner = ProjectionRunner(sql_projection("orders", sources=["orders"], target=typed), postgres_store)
    state = await runner.start()
    assert state.building_version == 2
    assert state.active_version == 1
    assert await fetch(postgres_store, "SELECT * FROM public.orders_by_id ORDER BY order_id") == untyped  # v1 serves
    state = await runner.run_until_caught_up()
    assert state.active_version == 2
    revenue = await fetch(
        postgres_store,
        "SELECT customer_id, sum(total) AS revenue FROM public.orders_by_id GROUP BY customer_id ORDER BY customer_id",
    )
    assert revenue == [
        {"customer_id": "ada", "revenue": decimal.Decimal(1005)},
        {"customer_id": "bob", "revenue": decimal.Decimal(250)},
    ]
    tables = await fetch(postgres_store, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'orders_by_id__v%'")
    assert [row["tablename"] for row in tables] == ["orders_by_id__v2"]  # v1 retired after the switch
    indexes = await fetch(postgres_store, "SELECT indexdef FROM pg_indexes WHERE tablename = 'orders_by_id__v2'")
    assert any(row["indexdef"].endswith("btree (customer_id)") for row in indexes)

    again = ProjectionRunner(sql_projection("orders", sources=["orders"], target=typed), postgres_store)
    state = await again.start()  # the same definition: no rebuild
    assert (state.active_version, state.building_version) == (2, None)
    changed_back = ProjectionRunner(sql_projection("orders", sources=["orders"], target=ORDERS), postgres_store)
    assert (await changed_back.start()).building_version == 3


async def test_changed_key_columns_rebuild_into_a_new_version_too(postgres_store: PostgresEventStore) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await postgres_store.append("orders", [order("o-1", "ada", 10), order("o-2", "bob", 20), order("o-3", "ada", 30)])
    await ProjectionRunner(
        sql_projection("orders", sources=["orders"], target=TYPED_ORDERS), postgres_store
    ).run_until_caught_up()
    by_customer = {
        **TYPED_ORDERS,
        "keyColumns": ["customer_id"],
        "columnTypes": {**TYPED_ORDERS["columnTypes"], "order_id": "text"},
    }
    runner = ProjectionRunner(sql_projection("orders", sources=["orders"], target=by_customer), postgres_store)
    assert (await runner.start()).building_version == 2  # before: ON CONFLICT (customer_id) failed every batch
    await runner.run_until_caught_up()
    rows = await fetch(postgres_store, "SELECT customer_id, order_id, total FROM public.orders_by_id ORDER BY 1")
    assert rows == [
        {"customer_id": "ada", "order_id": "o-3", "total": decimal.Decimal(30)},
        {"customer_id": "bob", "order_id": "o-2", "total": decimal.Decimal(20)},
    ]


async def test_an_index_added_to_the_target_is_created_on_the_active_version_without_a_rebuild(
    postgres_store: PostgresEventStore,
) -> None:
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await ProjectionRunner(
        sql_projection("orders", sources=["orders"], target=TYPED_ORDERS), postgres_store
    ).run_until_caught_up()
    indexed = {**TYPED_ORDERS, "indexes": [{"columns": ["customer_id", "total"]}]}
    state = await ProjectionRunner(sql_projection("orders", sources=["orders"], target=indexed), postgres_store).start()
    assert (state.active_version, state.building_version) == (1, None)
    indexes = await fetch(postgres_store, "SELECT indexdef FROM pg_indexes WHERE tablename = 'orders_by_id__v1'")
    assert any(row["indexdef"].endswith("btree (customer_id, total)") for row in indexes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"columnTypes": {"total": "varchar"}}, "has type 'varchar'; the types are text, bigint"),
        ({"columnTypes": {"total": "numeric(10,2)"}}, "has type 'numeric"),
        ({"columnTypes": {"total": "text); DROP TABLE x; --"}}, "has type"),
        ({"columnTypes": {"total": None}}, "has type None"),
        ({"columnTypes": {"missing": "text"}}, "not a key column nor set by any upsert"),
        ({"columnTypes": {"Total": "text"}}, "column name 'Total'"),
        ({"columnTypes": ["total"]}, "columnTypes must map"),
        ({"indexes": {"columns": ["total"]}}, "indexes must be a list"),
        ({"indexes": [{"columns": []}]}, "1 to 16 column names"),
        ({"indexes": [{"columns": ["total", "total"]}]}, "repeats a column"),
        ({"indexes": [{"columns": ["nope"]}]}, "not a key column nor set by any upsert"),
        ({"indexes": [{"columns": ["total"]}, {"columns": ["total"]}]}, "declared twice"),
        ({"indexes": [{"columns": ["total"], "unique": True}]}, "unknown"),
        ({"indexes": [{"columns": ['total"; DROP']}]}, "column name"),
    ],
)
def test_bad_type_names_and_index_specs_raise_a_typed_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ProjectionTargetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sql_target({**ORDERS, **change})


@pytest.mark.parametrize(
    "change",
    [
        {"column_types": {"total": "text); DROP TABLE x; --"}},
        {"column_types": {"to'tal": "text"}},
        {"indexes": (SqlIndex(("total'; --",)),)},
    ],
)
def test_a_target_built_in_code_is_checked_before_any_sql_is_made(change: dict[str, Any]) -> None:
    target = dataclasses.replace(parse_sql_target(ORDERS), **change)
    with pytest.raises(ProjectionTargetError, match="invalid SQL projection target"):
        sql_projection("orders", sources=["orders"], target=target)


def test_targets_without_types_keep_todays_defaults() -> None:
    target = parse_sql_target(ORDERS)
    assert [target.column_type(name) for name in target.column_names] == ["text", "jsonb", "jsonb"]
    assert target.indexes == ()


def test_the_column_types_are_the_operators_and_the_crds() -> None:
    from sluice_operator.crd_generation import custom_resource_definition  # noqa: PLC0415
    from sluice_operator.models import projections as operator_models  # noqa: PLC0415

    assert COLUMN_TYPES == operator_models.COLUMN_TYPES == get_args(operator_models.ColumnType)
    schema = custom_resource_definition(operator_models.Projection)["spec"]["versions"][0]["schema"]
    sql = schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["target"]["properties"]["sql"]
    assert tuple(sql["properties"]["columnTypes"]["additionalProperties"]["enum"]) == COLUMN_TYPES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"columnTypes": {"total": "money"}}, "has type 'money'"),
        ({"indexes": [{"columns": ["nope"]}]}, "not a key column nor set by any upsert"),
    ],
)
def test_the_cli_refuses_bad_types_and_indexes_before_touching_anything(change: dict[str, Any], message: str) -> None:
    target = json.dumps({**ORDERS, **change})
    result = run_cli(
        "project",
        "--name",
        "orders",
        "--source",
        "orders",
        "--sql-target",
        target,
        dsn="postgresql://nobody@127.0.0.1:1/none",
    )
    assert result.returncode == 2, result.stderr
    assert "invalid SQL projection target" in result.stderr
    assert message in result.stderr
