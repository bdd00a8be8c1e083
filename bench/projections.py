"""Projections: events/s applied to a PostgreSQL read model by a declarative SQL projection (batch 100,
each batch's upserts and checkpoint in one transaction), against raw INSERTs of the same rows into a
table of the same shape, 100 rows per transaction, on the same server in the same run (issue 7)."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import pydantic_core

import sluice
from bench.harness import Comparison, Databases, compare_rates, timed_rate
from sluice import EventData
from sluice.projections import ProjectionOptions, ProjectionRunner, sql_projection

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
    rows = [
        [order(n)["order_id"], *(json_text(order(n)[column]) for column in ("customer", "total_cents", "currency"))]
        for n in range(EVENTS)
    ]
    connection = await asyncpg.connect(dsn)
    runs = itertools.count(1)

    async def project() -> int:
        number = next(runs)
        target = {
            "table": f"summary_{number}",
            "keyColumns": ["order_id"],
            "upserts": [{"eventType": "OrderPlaced", "columns": COLUMNS}],
        }
        projection = sql_projection(
            f"summary-{number}", sources=["orders"], target=target, options=ProjectionOptions(batch_size=BATCH)
        )
        state = await ProjectionRunner(projection, store).run_until_caught_up()
        return state.active.events_applied

    async def insert_raw() -> int:
        table = f"raw_{next(runs)}"
        await connection.execute(RAW_CREATE.format(table=table))
        statement = RAW_INSERT.format(table=table)
        for start in range(0, EVENTS, BATCH):
            async with connection.transaction():
                await connection.executemany(statement, rows[start : start + BATCH])
        return EVENTS

    sluice_rate, raw_rate = await compare_rates(timed_rate(project), timed_rate(insert_raw), repetitions=3)
    await connection.close()
    await store.close()
    return [
        Comparison(
            f"SQL projection, batch {BATCH} ({EVENTS:,} events)",
            sluice_rate,
            raw_rate,
            "events/s",
            f">= {TARGET_RATIO}x raw INSERTs",
            sluice_rate / raw_rate >= TARGET_RATIO,
        )
    ]
