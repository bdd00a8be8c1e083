"""Projection controller against the fake API and a real PostgreSQL: its one-replica Deployment of
``sluice project``, SourcesReady (missing sources, sources on another database), and position, lag and dead
letters in status from the projection's checkpoint (written here by the runtime's own runner, in-process,
from the very ``--sql-target`` the operator put into the pod's arguments)."""

from __future__ import annotations

from typing import Any

import pytest

import sluice
from sluice import EventData
from sluice.services.projections import ProjectionRunner, parse_sql_target, sql_projection
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.dispatch import reconcile_named
from tests.operator_controllers.conftest import (
    DATABASE_SECRET,
    NAMESPACE,
    condition,
    conditions,
    event_stream,
    manifest,
)
from tests.operator_controllers.fake_kubernetes import FakeKubernetes

pytestmark = [pytest.mark.postgres]

NAME = "order-summary"


def order_summary(*sources: str) -> dict[str, Any]:
    upsert = {"eventType": "OrderPlaced", "columns": {"order_id": "$.order_id", "total": "$.total"}}
    target = {
        "sql": {
            "table": "controller_order_summary",
            "keyColumns": ["order_id"],
            "columnTypes": {"total": "bigint"},
            "upserts": [upsert],
        }
    }
    return manifest("Projection", NAME, {"sources": list(sources), "target": target, "batchSize": 10})


async def reconcile(context: OperatorContext) -> dict[str, Any]:
    await reconcile_named(context, "Projection", NAMESPACE, NAME)
    body = await context.kubernetes.get_custom_object("Projection", NAMESPACE, NAME)
    assert body is not None
    return body


async def test_the_deployment_runs_the_project_command_and_waits_for_its_pod(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.create(NAMESPACE, event_stream("shop-orders"))
    kubernetes.create(NAMESPACE, order_summary("shop-orders"))
    waiting = await reconcile(operator_context)

    deployment = kubernetes.get("Deployment", NAMESPACE, NAME)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 1  # one writer: events are applied in order
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "Projection"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][:5] == ["project", "--name", NAME, "--source", "shop-orders"]
    assert {"name": "SLUICE_DSN", "valueFrom": {"secretKeyRef": {"name": DATABASE_SECRET, "key": "uri"}}} in container[
        "env"
    ]
    assert condition(waiting, "SourcesReady") == ("True", "SourcesFound")
    assert condition(waiting, "WorkloadAvailable") == ("False", "ReplicasNotReady")
    assert condition(waiting, "Ready") == ("False", "ReplicasNotReady")
    assert "position" not in waiting["status"]  # its pod has not run yet: no checkpoint

    kubernetes.mark_deployment_available(NAMESPACE, NAME)
    ready = await reconcile(operator_context)
    assert condition(ready, "Ready") == ("True", "Reconciled")
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]


async def test_position_lag_and_dead_letters_come_from_the_projections_checkpoint(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.create(NAMESPACE, event_stream("shop-orders"))
    await reconcile_named(operator_context, "EventStream", NAMESPACE, "shop-orders")
    kubernetes.create(NAMESPACE, order_summary("shop-orders"))
    await reconcile(operator_context)
    kubernetes.mark_deployment_available(NAMESPACE, NAME)
    (container,) = (kubernetes.get("Deployment", NAMESPACE, NAME) or {})["spec"]["template"]["spec"]["containers"]
    target = parse_sql_target(container["args"][container["args"].index("--sql-target") + 1])

    async with await sluice.connect(postgres_dsn) as store:
        await store.append(
            "shop-orders",
            [
                *(EventData("OrderPlaced", {"order_id": f"o-{n:02}", "total": n}) for n in range(25)),
                EventData("OrderPlaced", {"order_id": "o-bad", "total": "lots"}),  # no bigint: dead-lettered
            ],
        )
        runner = ProjectionRunner(sql_projection(NAME, sources=["shop-orders"], target=target), store)
        await runner.run_until_caught_up()  # what the pod's `sluice project` does
        caught_up = await reconcile(operator_context)
        assert caught_up["status"]["position"]
        assert caught_up["status"]["lag"]["events"] == 0
        assert caught_up["status"]["deadLetters"] == 1
        assert condition(caught_up, "Ready") == ("True", "Reconciled")

        await store.append("shop-orders", [EventData("OrderPlaced", {"order_id": "o-99", "total": 1})])
    behind = await reconcile(operator_context)
    assert behind["status"]["lag"]["events"] == 1
    assert behind["status"]["position"] == caught_up["status"]["position"]


async def test_a_missing_source_is_named_and_gets_no_deployment(
    offline_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.create(NAMESPACE, event_stream("shop-orders"))
    kubernetes.create(NAMESPACE, order_summary("shop-orders", "shop-refunds"))
    body = await reconcile(offline_context)

    assert condition(body, "SourcesReady") == ("False", "SourceNotFound")
    assert condition(body, "Ready") == ("False", "SourceNotFound")
    assert conditions(body)["SourcesReady"]["message"].endswith(": shop-refunds")
    assert kubernetes.names("Deployment", NAMESPACE) == []

    kubernetes.create(NAMESPACE, event_stream("shop-refunds"))  # the source appears: the projection follows
    body = await reconcile(offline_context)
    assert condition(body, "SourcesReady") == ("True", "SourcesFound")
    assert kubernetes.names("Deployment", NAMESPACE) == [NAME]


async def test_a_source_on_another_database_is_named_and_gets_no_deployment(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    other_database = postgres_dsn.rsplit("/", 1)[0] + "/another_database"
    kubernetes.put_secret(NAMESPACE, "other-database", {"uri": other_database})
    kubernetes.create(NAMESPACE, event_stream("shop-orders"))
    kubernetes.create(NAMESPACE, event_stream("shop-payments", secret="other-database"))
    kubernetes.create(NAMESPACE, order_summary("shop-orders", "shop-payments"))
    body = await reconcile(operator_context)

    sources = conditions(body)["SourcesReady"]
    assert (sources["status"], sources["reason"]) == ("False", "SourcesOnOtherDatabases")
    assert "shop-payments live in another" in sources["message"]
    assert "shop-orders" not in sources["message"].split("EventStream(s)")[1]
    assert condition(body, "Ready") == ("False", "SourcesOnOtherDatabases")
    assert kubernetes.names("Deployment", NAMESPACE) == []
