"""RetentionPolicy controller against the fake API and a real PostgreSQL: which EventStreams it matches, a
run requested by annotation pruning them (never past a consumer group's position), the run in status, a
database that does not answer, and a schedule only the operator can refuse."""

from __future__ import annotations

from typing import Any

import pytest

import sluice
from sluice import EventData, StreamConfig
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.dispatch import reconcile_named
from sluice_operator.reconcile.retention_schedule import RUN_REQUESTED_ANNOTATION
from tests.contract.group_helpers import take
from tests.operator_controllers.conftest import (
    NAMESPACE,
    closed_port_dsn,
    condition,
    conditions,
    event_stream,
    manifest,
)
from tests.operator_controllers.fake_kubernetes import FakeKubernetes

pytestmark = [pytest.mark.postgres]

POLICY = "audit-short"


def retention_policy(**spec: Any) -> dict[str, Any]:
    return manifest("RetentionPolicy", POLICY, {"streamSelector": {"names": ["audit-*"]}, **spec})


async def reconcile(context: OperatorContext) -> dict[str, Any]:
    await reconcile_named(context, "RetentionPolicy", NAMESPACE, POLICY)
    body = await context.kubernetes.get_custom_object("RetentionPolicy", NAMESPACE, POLICY)
    assert body is not None
    return body


def request_run(kubernetes: FakeKubernetes, value: str) -> None:
    """``kubectl annotate retentionpolicy audit-short sluice.dev/run-requested=<value> --overwrite``."""
    kubernetes.patch(
        "RetentionPolicy", NAMESPACE, POLICY, {"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: value}}}
    )


async def first_offset(dsn: str, stream: str) -> int:
    async with await sluice.connect(dsn) as store:
        async for event in store.read_stream(stream, limit=1):
            return event.offset
    raise AssertionError(f"{stream} is empty")


async def test_a_requested_run_prunes_the_matched_streams_but_not_past_a_groups_position(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        for name in ("audit-logins", "audit-payments", "orders"):
            await store.create_stream(StreamConfig(name=name))
            await store.append(name, [EventData("Audited", {"n": n}) for n in range(50)])
        consumption = store.consumer_groups().consume("audit-payments", group_id="fraud-checks", consumer_id="m1")
        await take(consumption, 15)  # the group has processed 15 events: the rest is held back
        await consumption.aclose()
    for name in ("audit-payments", "orders", "audit-logins"):
        kubernetes.create(NAMESPACE, event_stream(name))
    kubernetes.create(NAMESPACE, retention_policy(maxEventCount=5))

    idle = await reconcile(operator_context)
    assert idle["status"]["matchedStreams"] == ["audit-logins", "audit-payments"]
    assert "lastRunTime" not in idle["status"]  # the nightly schedule has not come yet
    assert condition(idle, "Enforced") == ("True", "NotDue")
    assert condition(idle, "DatabaseReachable") == ("True", "Checked")
    assert condition(idle, "Ready") == ("True", "Reconciled")
    assert idle["status"]["nextRunTime"]
    assert await first_offset(postgres_dsn, "audit-logins") == 0

    request_run(kubernetes, "first")
    ran = await reconcile(operator_context)
    status = ran["status"]
    assert status["lastRunRequest"] == "first"
    assert status["prunedEvents"] == 45 + 15  # all but 5 of audit-logins; audit-payments only up to the group
    assert status["prunedBytes"] > 0
    assert status["heldBackBy"] == ["audit-payments/fraud-checks"]
    assert status["lastRunTime"]
    assert condition(ran, "Enforced") == ("True", "Requested")
    assert condition(ran, "Ready") == ("True", "Reconciled")
    assert await first_offset(postgres_dsn, "audit-logins") == 45
    assert await first_offset(postgres_dsn, "audit-payments") == 15
    assert await first_offset(postgres_dsn, "orders") == 0  # not matched, not touched

    again = await reconcile(operator_context)  # the same request value does not run again
    assert again["status"]["lastRunTime"] == status["lastRunTime"]
    assert condition(again, "Enforced") == ("True", "NotDue")
    request_run(kubernetes, "second")  # a new one does, and finds nothing more to prune
    second = await reconcile(operator_context)
    assert (second["status"]["lastRunRequest"], second["status"]["prunedEvents"]) == ("second", 0)
    assert await first_offset(postgres_dsn, "audit-logins") == 45


async def test_matching_by_labels_and_a_stream_not_yet_created_in_the_database(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    labelled = event_stream("clicks")
    labelled["metadata"]["labels"] = {"retention": "short"}
    kubernetes.create(NAMESPACE, labelled)  # never reconciled: no stream in the database yet
    kubernetes.create(NAMESPACE, event_stream("audit-logins"))
    kubernetes.create(
        NAMESPACE,
        manifest(
            "RetentionPolicy", POLICY, {"streamSelector": {"matchLabels": {"retention": "short"}}, "maxAge": "7d"}
        ),
    )
    request_run(kubernetes, "now")
    ran = await reconcile(operator_context)
    assert ran["status"]["matchedStreams"] == ["clicks"]
    assert ran["status"]["prunedEvents"] == 0  # nothing to prune in a stream that does not exist yet
    assert condition(ran, "Enforced") == ("True", "Requested")


async def test_between_runs_a_policy_whose_database_is_down_is_not_ready_and_recovers(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.put_secret(NAMESPACE, "down-database", {"uri": closed_port_dsn()})
    kubernetes.create(NAMESPACE, event_stream("audit-logins", secret="down-database"))
    kubernetes.create(NAMESPACE, retention_policy(maxEventCount=5))

    down = await reconcile(operator_context)  # no exception: the status says it
    assert condition(down, "Ready") == ("False", "DatabaseUnreachable")
    assert condition(down, "DatabaseReachable") == ("False", "DatabaseUnreachable")
    assert condition(down, "Enforced") == ("True", "NotDue")  # no run was due: the outage alone made it unready
    assert "nobody" not in conditions(down)["Ready"]["message"]  # no credentials in status

    kubernetes.put_secret(NAMESPACE, "down-database", {"uri": postgres_dsn})
    up = await reconcile(operator_context)
    assert condition(up, "DatabaseReachable") == ("True", "Checked")
    assert condition(up, "Ready") == ("True", "Reconciled")


async def test_a_run_against_a_database_that_is_down_fails_and_is_tried_again(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="audit-logins"))
        await store.append("audit-logins", [EventData("Audited", {"n": n}) for n in range(20)])
    kubernetes.put_secret(NAMESPACE, "flaky-database", {"uri": closed_port_dsn()})
    kubernetes.create(NAMESPACE, event_stream("audit-logins", secret="flaky-database"))
    kubernetes.create(NAMESPACE, retention_policy(maxEventCount=5))
    request_run(kubernetes, "first")

    failed = await reconcile(operator_context)
    assert condition(failed, "Enforced") == ("False", "DatabaseUnreachable")
    assert "the run failed" in conditions(failed)["Enforced"]["message"]
    assert "lastRunTime" not in failed["status"]  # so the next reconcile tries again

    kubernetes.put_secret(NAMESPACE, "flaky-database", {"uri": postgres_dsn})
    ran = await reconcile(operator_context)
    assert ran["status"]["lastRunRequest"] == "first"
    assert ran["status"]["prunedEvents"] == 15
    assert condition(ran, "Ready") == ("True", "Reconciled")


async def test_a_schedule_the_api_server_accepts_but_cron_refuses_stalls_as_an_invalid_spec(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.create(NAMESPACE, event_stream("audit-logins"))
    kubernetes.create(NAMESPACE, retention_policy(maxEventCount=5, schedule="61 * * * *"))
    body = await reconcile(operator_context)

    assert condition(body, "Stalled") == ("True", "InvalidSpec")
    assert condition(body, "Ready") == ("False", "InvalidSpec")
    assert "not a valid cron expression" in conditions(body)["Stalled"]["message"]
    assert body["status"]["observedGeneration"] == 1

    kubernetes.patch("RetentionPolicy", NAMESPACE, POLICY, {"spec": {"schedule": "0 4 * * *"}})  # fixed
    fixed = await reconcile(operator_context)
    assert condition(fixed, "Stalled") == ("False", "Reconciled")
    assert fixed["status"]["observedGeneration"] == 2
