"""Projections: events/s applied to a PostgreSQL read model by a declarative SQL projection (batch 100,
each batch's upserts and checkpoint in one transaction), against raw INSERTs of the same rows into a
table of the same shape, 100 rows per transaction, on the same server in the same run (issue 7); and the
same with typed columns (issue 20: text, bigint, text converted by PostgreSQL, each bigint checked by
``projection_cast_error``) against raw INSERTs into a typed table."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pydantic_core

import sluice
from bench.harness import Comparison, Databases, compare_rates, timed_rate
from sluice import EventData
from sluice.services.projections import ProjectionOptions, ProjectionRunner, sql_projection

EVENTS = 20_000
BATCH = 100
TARGET_RATIO = 0.5
COLUMNS = {"order_id": "$.order_id", "customer": "$.customer", "total_cents": "$.total_cents", "currency": "$.currency"}
# The baseline writes the rows the projection writes (text key, jsonb values), with no reading, decoding or checkpoint.
RAW_CREATE = """
CREATE TABLE public.{table} (order_id text NOT NULL, customer jsonb, total_cents jsonb, currency jsonb,
                             PRIMARY KEY (order_id))"""
RAW_INSERT = """
INSERT INTO public.{table} (order_id, customer, total_cents, currency) VALUES ($1, $2::jsonb, $3::jsonb, $4::jsonb)"""
COLUMN_TYPES = {"customer": "text", "total_cents": "bigint", "currency": "text"}
TYPED_RAW_CREATE = """
CREATE TABLE public.{table} (order_id text NOT NULL, customer text, total_cents bigint, currency text,
                             PRIMARY KEY (order_id))"""
TYPED_RAW_INSERT = """
INSERT INTO public.{table} (order_id, customer, total_cents, currency) VALUES ($1, $2, $3, $4)"""


def order(n: int) -> dict[str, Any]:
    return {"order_id": f"o-{n}", "customer": f"c-{n % 97}", "total_cents": 1000 + n, "currency": "EUR"}


def json_text(value: Any) -> str:
    return pydantic_core.to_json(value).decode()


async def run(databases: Databases) -> list[Comparison]:
    dsn = await databases.fresh()
    store = await sluice.connect(dsn)
    await store.create_stream(sluice.StreamConfig(name="orders"))
    for start in range(0, EVENTS, 1000):
        await store.append("orders", [EventData("OrderPlaced", order(n)) for n in range(start, start + 1000)])
    jsonb_rows = [
        [order(n)["order_id"], *(json_text(order(n)[column]) for column in ("customer", "total_cents", "currency"))]
        for n in range(EVENTS)
    ]
    typed_rows = [
        [order(n)[column] for column in ("order_id", "customer", "total_cents", "currency")] for n in range(EVENTS)
    ]
    connection = await asyncpg.connect(dsn)
    runs = itertools.count(1)

    def projector(column_types: dict[str, str] | None) -> Callable[[], Awaitable[int]]:
        async def project() -> int:
            number = next(runs)
            target: dict[str, Any] = {
                "table": f"summary_{number}",
                "keyColumns": ["order_id"],
                "upserts": [{"eventType": "OrderPlaced", "columns": COLUMNS}],
            }
            if column_types is not None:
                target["columnTypes"] = column_types
            projection = sql_projection(
                f"summary-{number}", sources=["orders"], target=target, options=ProjectionOptions(batch_size=BATCH)
            )
            state = await ProjectionRunner(projection, store).run_until_caught_up()
            return state.active.events_applied

        return project

    def inserter(create: str, insert: str, rows: list[list[Any]]) -> Callable[[], Awaitable[int]]:
        async def insert_raw() -> int:
            table = f"raw_{next(runs)}"
            await connection.execute(create.format(table=table))
            statement = insert.format(table=table)
            for start in range(0, EVENTS, BATCH):
                async with connection.transaction():
                    await connection.executemany(statement, rows[start : start + BATCH])
            return EVENTS

        return insert_raw

    comparisons = []
    for label, column_types, raw in (
        ("", None, inserter(RAW_CREATE, RAW_INSERT, jsonb_rows)),
        (", typed columns", COLUMN_TYPES, inserter(TYPED_RAW_CREATE, TYPED_RAW_INSERT, typed_rows)),
    ):
        sluice_rate, raw_rate = await compare_rates(timed_rate(projector(column_types)), timed_rate(raw), repetitions=3)
        comparisons.append(
            Comparison(
                f"SQL projection{label}, batch {BATCH} ({EVENTS:,} events)",
                sluice_rate,
                raw_rate,
                "events/s",
                f">= {TARGET_RATIO}x raw INSERTs",
                sluice_rate / raw_rate >= TARGET_RATIO,
            )
        )
    await connection.close()
    await store.close()
    return comparisons
