"""The repository's examples through one resync pass (what the operator does every interval), and an
operator started again over objects it already reconciled: it converges without duplicate conditions, and
without rewriting a child or a status that did not change."""

from __future__ import annotations

from collections import Counter

import pytest

import sluice
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.databases import Databases
from sluice_operator.resync import resync_once
from tests.custom_resources.manifests import SLUICE_EXAMPLE_FILES, load_example
from tests.operator_controllers.conftest import NAMESPACE, condition, conditions
from tests.operator_controllers.fake_kubernetes import FakeKubernetes

pytestmark = [pytest.mark.postgres]


async def test_every_example_reaches_its_expected_conditions_in_one_resync(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    for file_name in SLUICE_EXAMPLE_FILES:
        kubernetes.create(NAMESPACE, load_example(file_name))
    await resync_once(operator_context)

    stream = kubernetes.get("EventStream", NAMESPACE, "orders")
    assert condition(stream, "Ready") == ("True", "Reconciled")
    assert condition(stream, "SchemaReady")[0] == "True"
    assert condition(stream, "Stalled")[0] == "False"
    assert (stream or {})["status"]["headOffsets"] == [{"partition": p, "head": 0, "first": 0} for p in range(4)]
    async with await sluice.connect(postgres_dsn) as store:
        assert (await store.get_stream("orders")).partitions == 4

    # No pod becomes ready here (no deployment controller runs): the group waits on its workload, and says so.
    group = kubernetes.get("ConsumerGroup", NAMESPACE, "email-notifications")
    assert condition(group, "Ready") == ("False", "ReplicasNotReady")
    assert condition(group, "StreamFound")[0] == "True"
    assert condition(group, "DatabaseReachable") == ("True", "LagPolled")  # the resync polled lag
    assert (group or {})["status"]["selector"]
    assert (group or {})["status"]["idleReplicas"] == 0

    projection = kubernetes.get("Projection", NAMESPACE, "order-summary")
    assert condition(projection, "SourcesReady")[0] == "True"
    assert condition(projection, "WorkloadAvailable") == ("False", "ReplicasNotReady")
    replay = kubernetes.get("Replay", NAMESPACE, "orders-to-email-notifications")
    assert (replay or {})["status"]["phase"] == "Pending"
    assert condition(replay, "Succeeded")[0] == "Unknown"
    assert condition(replay, "Ready")[0] != "True"  # Unknown: the Job has not run yet
    policy = kubernetes.get("RetentionPolicy", NAMESPACE, "orders-nightly")
    assert condition(policy, "Ready") == ("True", "Reconciled")
    assert (policy or {})["status"]["matchedStreams"] == ["orders"]
    assert condition(policy, "Enforced") == ("True", "NotDue")  # nightly at 03:00, unless asked for sooner

    for kind, name in (
        ("EventStream", "orders"),
        ("ConsumerGroup", "email-notifications"),
        ("Projection", "order-summary"),
        ("Replay", "orders-to-email-notifications"),
        ("RetentionPolicy", "orders-nightly"),
    ):
        body = kubernetes.get(kind, NAMESPACE, name)
        assert (body or {})["status"]["observedGeneration"] == 1, kind
    assert kubernetes.names("Deployment", NAMESPACE) == ["email-notifications", "order-summary"]
    assert kubernetes.names("Job", NAMESPACE) == ["orders-to-email-notifications"]


async def test_a_restarted_operator_converges_without_duplicates_or_rewrites(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.create(NAMESPACE, load_example("event-stream.yaml"))
    for name in ("group-a", "group-b", "group-c"):
        group = load_example("consumer-group.yaml")
        group["metadata"]["name"] = name
        kubernetes.create(NAMESPACE, group)
    await resync_once(operator_context)
    versions = {
        (kind, name): (kubernetes.get(kind, NAMESPACE, name) or {})["metadata"]["resourceVersion"]
        for kind in ("ConsumerGroup", "Deployment", "EventStream")
        for name in kubernetes.names(kind, NAMESPACE)
    }
    patches_before = Counter(call[0] for call in kubernetes.calls)["patch_status"]

    restarted = OperatorContext(  # a new process: new connections, nothing remembered
        settings=operator_context.settings,
        kubernetes=kubernetes,
        databases=Databases(timeout_seconds=operator_context.settings.database_timeout_seconds),
        namespaces=operator_context.namespaces,
    )
    try:
        await resync_once(restarted)
        await resync_once(restarted)
    finally:
        await restarted.databases.close()

    assert kubernetes.names("Deployment", NAMESPACE) == ["group-a", "group-b", "group-c"]
    for (kind, name), version in versions.items():
        assert (kubernetes.get(kind, NAMESPACE, name) or {})["metadata"]["resourceVersion"] == version, (kind, name)
    assert Counter(call[0] for call in kubernetes.calls)["patch_status"] == patches_before
    for name in ("group-a", "group-b", "group-c"):
        body = kubernetes.get("ConsumerGroup", NAMESPACE, name)
        types = [found["type"] for found in (body or {})["status"]["conditions"]]
        assert len(types) == len(set(types)) == len(conditions(body))
