"""The contract with the operator: the command line its Projection pods run (built by the operator's own
code from the example manifests) parses, and its SQL target provisions and fills a table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from sluice import EventData, StreamConfig
from sluice.services.projections import ProjectionRunner, parse_sql_target, projection_status, sql_projection
from sluice.storage.postgres.store import PostgresEventStore
from sluice_operator.models.projections import Projection as ProjectionResource
from sluice_operator.models.projections import ProjectionStatus
from sluice_operator.reconcile.projections import project_arguments
from tests.cli.conftest import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def operator_arguments(manifest: Path) -> list[str]:
    resource = ProjectionResource.model_validate(yaml.safe_load(manifest.read_text()))
    return project_arguments(resource, resource.spec.sources)


def sql_target_argument(arguments: list[str]) -> str:
    return arguments[arguments.index("--sql-target") + 1]


@pytest.mark.parametrize("manifest", ["projection.yaml", "end-to-end/30-order-summary.yaml"])
def test_the_operators_command_line_parses(manifest: str) -> None:
    arguments = operator_arguments(EXAMPLES / manifest)
    assert arguments[0] == "project"
    # Parsed and validated in full, so the command gets as far as connecting (exit 1, not a usage error: 2).
    result = run_cli(*arguments, dsn="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 1, result.stderr
    assert "database connection failed during connect" in result.stderr
    target = parse_sql_target(sql_target_argument(arguments))
    assert (target.schema, target.table, target.key_columns) == ("reporting", "order_summary", ("order_id",))
    assert (target.column_type("customer_id"), target.column_type("total")) == ("text", "bigint")
    assert [index.columns for index in target.indexes] == [("customer_id",)]


@pytest.mark.postgres
async def test_the_example_target_fills_its_table(postgres_store: PostgresEventStore) -> None:
    target = sql_target_argument(operator_arguments(EXAMPLES / "projection.yaml"))
    await postgres_store.create_stream(StreamConfig(name="orders"))
    await postgres_store.append(
        "orders",
        [
            EventData("OrderPlaced", {"order_id": "o-1", "customer_id": "c-1", "total": 1250, "status": "placed"}),
            EventData("OrderShipped", {"order_id": "o-1", "status": "shipped", "shipped_at": "2026-11-26T10:00:00Z"}),
        ],
    )
    runner = ProjectionRunner(sql_projection("order-summary", sources=["orders"], target=target), postgres_store)
    await runner.run_until_caught_up()
    async with postgres_store.acquire() as connection:
        row = await connection.fetchrow("SELECT * FROM reporting.order_summary")
    assert dict(row or {}) == {  # typed columns: plain values
        "order_id": "o-1",
        "customer_id": "c-1",
        "total": 1250,
        "status": "shipped",
        "shipped_at": datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    }


@pytest.mark.postgres
async def test_the_status_fits_the_operators_projection_status(postgres_store: PostgresEventStore) -> None:
    target = sql_target_argument(operator_arguments(EXAMPLES / "projection.yaml"))
    await postgres_store.create_stream(StreamConfig(name="orders"))
    runner = ProjectionRunner(sql_projection("order-summary", sources=["orders"], target=target), postgres_store)
    await runner.start()
    empty = await projection_status(postgres_store, "order-summary")
    assert ProjectionStatus.model_validate(empty.to_manifest()).position is None
    await postgres_store.append("orders", [EventData("OrderPlaced", {"order_id": f"o-{n}"}) for n in range(3)])
    await runner.run_until_caught_up()
    await runner.start(reset_generation=1)
    status = ProjectionStatus.model_validate((await projection_status(postgres_store, "order-summary")).to_manifest())
    assert status.rebuild is not None
    assert (status.rebuild.phase, status.rebuild.events_total, status.rebuild.percent) == ("Running", 3, 0)
    assert status.lag is not None
    assert status.lag.events == 0  # the active version is caught up while the next one builds
    await runner.run_until_caught_up()
    done = await projection_status(postgres_store, "order-summary")
    status = ProjectionStatus.model_validate(done.to_manifest())
    assert status.position == str(done.position)
    assert status.dead_letters == 0
    assert status.rebuild is not None
    assert (status.rebuild.phase, status.rebuild.events_done, status.rebuild.percent) == ("Succeeded", 3, 100)
