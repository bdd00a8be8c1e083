"""RetentionPolicy through the running operator: a run requested by annotation prunes the matched streams in
PostgreSQL, respecting consumer positions, and the run is written into status."""

from __future__ import annotations

from typing import Any

import pytest

import sluice
from sluice import EventData, StreamConfig
from tests.contract.group_helpers import take
from tests.custom_resources.cluster import KubernetesCluster, Manifest
from tests.kopf_operator.conftest import DATABASE_SECRET
from tests.kopf_operator.helpers import (
    condition_status,
    conditions,
    reconciled_with,
    replace_secret_uri,
    wait_for_object,
)
from tests.kopf_operator.operator_process import OperatorProcess, free_port

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]


def retention_policy(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "RetentionPolicy",
        "metadata": {"name": name},
        "spec": {"streamSelector": {"names": ["audit-*"]}, **spec},
    }


def event_stream(name: str, *, secret: str = DATABASE_SECRET) -> dict[str, Any]:
    return {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "EventStream",
        "metadata": {"name": name},
        "spec": {"database": {"secretRef": {"name": secret}}},
    }


def ran_for(request: str) -> Any:
    def done(body: Manifest) -> bool:
        return (body.get("status") or {}).get("lastRunRequest") == request

    return done


async def first_offset(dsn: str, stream: str) -> int:
    async with await sluice.connect(dsn) as store:
        async for event in store.read_stream(stream, limit=1):
            return event.offset
    raise AssertionError(f"{stream} is empty")


async def test_a_requested_run_prunes_matched_streams_but_not_past_a_groups_position(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess, postgres_dsn: str
) -> None:
    namespace = operator_namespace
    async with await sluice.connect(postgres_dsn) as store:
        for name in ("audit-logins", "audit-payments", "orders"):
            await store.create_stream(StreamConfig(name=name))
            await store.append(name, [EventData("Audited", {"n": n}) for n in range(50)])
        # A group that has processed the first 15 events of audit-payments holds the rest back.
        consumption = store.consumer_groups().consume("audit-payments", group_id="fraud-checks", consumer_id="m1")
        await take(consumption, 15)
        await consumption.aclose()
    for name in ("audit-logins", "audit-payments", "orders"):
        kubernetes_cluster.create(namespace, event_stream(name))
    kubernetes_cluster.create(namespace, retention_policy("audit-short", maxEventCount=5))

    policy = wait_for_object(
        kubernetes_cluster, namespace, "RetentionPolicy", "audit-short", reconciled_with("Ready", "True")
    )
    assert policy["status"]["matchedStreams"] == ["audit-logins", "audit-payments"]
    assert "lastRunTime" not in policy["status"]  # the nightly schedule has not come yet
    assert conditions(policy)["Enforced"]["reason"] == "NotDue"
    assert policy["status"]["nextRunTime"]

    kubernetes_cluster.kubectl(
        "annotate", "retentionpolicy", "audit-short", "sluice.dev/run-requested=first", namespace=namespace
    )
    policy = wait_for_object(kubernetes_cluster, namespace, "RetentionPolicy", "audit-short", ran_for("first"))
    status = policy["status"]
    assert status["prunedEvents"] == 45 + 15  # all but 5 of audit-logins; audit-payments only up to the group
    assert status["prunedBytes"] > 0
    assert status["heldBackBy"] == ["audit-payments/fraud-checks"]
    assert status["lastRunTime"]
    assert condition_status(policy, "Ready") == "True"
    assert conditions(policy)["Enforced"]["reason"] == "Requested"
    assert await first_offset(postgres_dsn, "audit-logins") == 45
    assert await first_offset(postgres_dsn, "audit-payments") == 15
    assert await first_offset(postgres_dsn, "orders") == 0  # not matched, not touched

    # The same request value does not run again; a new one does (and finds nothing more to prune).
    kubernetes_cluster.kubectl(
        "annotate",
        "retentionpolicy",
        "audit-short",
        "sluice.dev/run-requested=second",
        "--overwrite",
        namespace=namespace,
    )
    policy = wait_for_object(kubernetes_cluster, namespace, "RetentionPolicy", "audit-short", ran_for("second"))
    assert policy["status"]["prunedEvents"] == 0
    assert await first_offset(postgres_dsn, "audit-logins") == 45


async def test_an_event_streams_own_retention_is_applied_and_reported(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess, postgres_dsn: str
) -> None:
    namespace = operator_namespace
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="clicks"))
        await store.append("clicks", [EventData("Clicked", {"n": n}) for n in range(30)])
    manifest = event_stream("clicks")
    manifest["spec"]["retention"] = {"maxEventCount": 10}
    kubernetes_cluster.create(namespace, manifest)

    stream = wait_for_object(
        kubernetes_cluster,
        namespace,
        "EventStream",
        "clicks",
        lambda body: (body.get("status") or {}).get("prunedEvents") == 20,
    )
    assert stream["status"]["headOffsets"] == [{"partition": 0, "head": 30, "first": 20}]
    assert stream["status"]["approximateEventCount"] == 10
    assert stream["status"]["appendedEventCount"] == 30
    assert stream["status"]["lastPruneTime"]
    assert await first_offset(postgres_dsn, "clicks") == 20


async def test_a_policy_between_runs_is_not_ready_while_its_database_is_unreachable(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess, postgres_dsn: str
) -> None:
    # Found on the real node: no run being due, the policy never asked its database and stayed Ready=True
    # through a PostgreSQL outage, while every other kind went Ready=False (DatabaseUnreachable).
    namespace = operator_namespace
    kubernetes_cluster.kubectl(
        "create",
        "secret",
        "generic",
        "unreachable-database",
        f"--from-literal=uri=postgresql://nobody@127.0.0.1:{free_port()}/nothing",
        namespace=namespace,
    )
    kubernetes_cluster.create(namespace, event_stream("audit-logins", secret="unreachable-database"))
    kubernetes_cluster.create(namespace, retention_policy("audit-short", maxEventCount=5))

    down = wait_for_object(
        kubernetes_cluster, namespace, "RetentionPolicy", "audit-short", reconciled_with("Ready", "False")
    )
    assert conditions(down)["Ready"]["reason"] == "DatabaseUnreachable"
    assert condition_status(down, "DatabaseReachable") == "False"
    assert conditions(down)["Enforced"]["reason"] == "NotDue"  # no run was due: the outage alone made it unready
    assert "nobody" not in conditions(down)["Ready"]["message"]  # no credentials in status

    # The database comes back: its Secret now holds a reachable URI (spec.database itself is immutable).
    replace_secret_uri(kubernetes_cluster, namespace, "unreachable-database", postgres_dsn)
    up = wait_for_object(
        kubernetes_cluster, namespace, "RetentionPolicy", "audit-short", reconciled_with("Ready", "True")
    )
    assert condition_status(up, "DatabaseReachable") == "True"
