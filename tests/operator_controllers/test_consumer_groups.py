"""ConsumerGroup controller against the fake API and a real PostgreSQL: the Deployment of ``sluice consume``
pods (arguments, environment, owner), /scale fields, availability from the Deployment's status, idle
replicas, drift repair, and lag, positions and members from the lag poll."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio.client.exceptions import ApiException

import sluice
from sluice import EventData
from sluice_operator.controllers.consumer_groups import poll_stream_lag
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.dispatch import reconcile_named
from sluice_operator.metrics import RECONCILES
from tests.contract.group_helpers import take
from tests.custom_resources.manifests import load_example
from tests.operator_controllers.conftest import (
    DATABASE_SECRET,
    IMAGE,
    NAMESPACE,
    closed_port_dsn,
    condition,
    conditions,
)
from tests.operator_controllers.fake_kubernetes import FakeKubernetes

pytestmark = [pytest.mark.postgres]

GROUP = "email-notifications"
STREAM = "orders"  # the example group's stream: 4 partitions, broadcast


def create_stream_and_group(kubernetes: FakeKubernetes, *, stream: dict[str, Any] | None = None, **spec: Any) -> None:
    kubernetes.create(NAMESPACE, stream or load_example("event-stream.yaml"))
    group = load_example("consumer-group.yaml")
    group["spec"].update(spec)
    kubernetes.create(NAMESPACE, group)


async def reconcile_stream_and_group(context: OperatorContext) -> dict[str, Any]:
    await reconcile_named(context, "EventStream", NAMESPACE, STREAM)
    await reconcile_named(context, "ConsumerGroup", NAMESPACE, GROUP)
    group = await context.kubernetes.get_custom_object("ConsumerGroup", NAMESPACE, GROUP)
    assert group is not None
    return group


def container_of(kubernetes: FakeKubernetes) -> dict[str, Any]:
    deployment = kubernetes.get("Deployment", NAMESPACE, GROUP)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


async def test_the_deployment_runs_the_consume_command_with_the_database_from_the_secret(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes)
    group = await reconcile_stream_and_group(operator_context)

    deployment = kubernetes.get("Deployment", NAMESPACE, GROUP)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ConsumerGroup",
        GROUP,
        group["metadata"]["uid"],
        True,
    )
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    container = container_of(kubernetes)
    assert container["image"] == IMAGE
    assert container["command"] == ["sluice"]
    arguments = container["args"]
    assert arguments[:5] == ["consume", "--stream", STREAM, "--group", GROUP]
    assert arguments[arguments.index("--sink") + 1] == "http://email-service.shop.svc.cluster.local:8080/events"
    assert arguments[arguments.index("--commit-strategy") + 1] == "after_batch"
    assert arguments[arguments.index("--max-attempts") + 1] == "5"  # from the stream's deadLetter
    environment = {variable["name"]: variable for variable in container["env"]}
    assert environment["SLUICE_CONSUMER_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert environment["SLUICE_DSN"]["valueFrom"] == {"secretKeyRef": {"name": DATABASE_SECRET, "key": "uri"}}
    assert environment["SLUICE_SCHEMA"]["value"] == "sluice"
    assert container["resources"]["limits"] == {"memory": "256Mi"}

    status = group["status"]
    assert status["selector"] == ",".join(
        f"{key}={value}" for key, value in sorted(deployment["spec"]["selector"]["matchLabels"].items())
    )
    assert (status["replicas"], status["readyReplicas"], status["idleReplicas"]) == (0, 0, 0)
    assert condition(group, "StreamFound") == ("True", "StreamFound")
    assert condition(group, "WorkloadAvailable") == ("False", "ReplicasNotReady")  # no pod ready yet
    assert condition(group, "Ready") == ("False", "ReplicasNotReady")
    assert condition(group, "ReplicasIdle") == ("False", "AllReplicasAssigned")


async def test_the_group_is_ready_once_its_pods_are(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes, replicas=1)
    await reconcile_stream_and_group(operator_context)
    kubernetes.observe_deployment(NAMESPACE, GROUP, ready_replicas=0)
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP)
    waiting = kubernetes.get("ConsumerGroup", NAMESPACE, GROUP)
    assert condition(waiting, "WorkloadAvailable") == ("False", "ReplicasNotReady")
    assert (waiting or {})["status"]["replicas"] == 1

    kubernetes.mark_deployment_available(NAMESPACE, GROUP)
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP)
    ready = kubernetes.get("ConsumerGroup", NAMESPACE, GROUP)
    assert condition(ready, "WorkloadAvailable") == ("True", "MinimumReplicasAvailable")
    assert condition(ready, "Ready") == ("True", "Reconciled")
    assert (ready or {})["status"]["readyReplicas"] == 1


async def test_more_replicas_than_partitions_stand_by_idle(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes)
    await reconcile_stream_and_group(operator_context)
    kubernetes.patch("ConsumerGroup", NAMESPACE, GROUP, {"spec": {"replicas": 5}})  # kubectl scale --replicas=5
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP)

    deployment = kubernetes.get("Deployment", NAMESPACE, GROUP)
    assert deployment is not None
    assert (deployment["spec"]["replicas"], deployment["metadata"]["generation"]) == (5, 2)
    kubernetes.mark_deployment_available(NAMESPACE, GROUP)
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP)
    scaled = kubernetes.get("ConsumerGroup", NAMESPACE, GROUP)
    assert (scaled or {})["status"]["replicas"] == 5
    assert (scaled or {})["status"]["idleReplicas"] == 1  # 5 replicas, 4 partitions
    assert condition(scaled, "ReplicasIdle") == ("True", "MoreReplicasThanPartitions")
    assert condition(scaled, "Ready") == ("True", "Reconciled")  # idle replicas are information, not a fault


async def test_with_queue_delivery_no_replica_is_idle(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    stream = load_example("event-stream.yaml")
    stream["spec"]["deliverySemantics"] = "queue"
    create_stream_and_group(kubernetes, stream=stream, replicas=6)
    group = await reconcile_stream_and_group(operator_context)
    assert group["status"]["idleReplicas"] == 0
    assert condition(group, "ReplicasIdle") == ("False", "AllReplicasAssigned")


async def test_scaled_to_zero_the_group_is_ready_without_pods(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes, replicas=0)
    group = await reconcile_stream_and_group(operator_context)
    assert (kubernetes.get("Deployment", NAMESPACE, GROUP) or {})["spec"]["replicas"] == 0
    assert condition(group, "WorkloadAvailable") == ("True", "ScaledToZero")
    assert condition(group, "Ready") == ("True", "Reconciled")


async def test_a_deployment_deleted_by_hand_comes_back_and_an_unchanged_one_is_not_rewritten(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes)
    await reconcile_stream_and_group(operator_context)
    first = kubernetes.get("Deployment", NAMESPACE, GROUP)
    assert first is not None
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP)  # a resync: same manifest
    again = kubernetes.get("Deployment", NAMESPACE, GROUP)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["generation"] == 1

    kubernetes.delete("Deployment", NAMESPACE, GROUP)
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP)
    recreated = kubernetes.get("Deployment", NAMESPACE, GROUP)
    assert recreated is not None
    assert recreated["metadata"]["uid"] != first["metadata"]["uid"]
    assert recreated["spec"] == first["spec"]


async def test_a_group_whose_stream_does_not_exist_says_so_and_gets_no_deployment(
    offline_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.create(NAMESPACE, load_example("consumer-group.yaml"))
    await reconcile_named(offline_context, "ConsumerGroup", NAMESPACE, GROUP)

    group = kubernetes.get("ConsumerGroup", NAMESPACE, GROUP)
    assert condition(group, "StreamFound") == ("False", "StreamNotFound")
    assert condition(group, "Ready") == ("False", "StreamNotFound")
    assert "EventStream 'orders' not found" in conditions(group)["StreamFound"]["message"]
    assert (group or {})["status"]["selector"]  # /scale works before the stream exists
    assert kubernetes.names("Deployment", NAMESPACE) == []


async def test_a_missing_database_secret_blocks_the_deployment(
    offline_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes)
    kubernetes.delete_secret(NAMESPACE, DATABASE_SECRET)
    await reconcile_named(offline_context, "ConsumerGroup", NAMESPACE, GROUP)

    group = kubernetes.get("ConsumerGroup", NAMESPACE, GROUP)
    assert condition(group, "WorkloadAvailable") == ("False", "InvalidDatabaseSecret")
    assert kubernetes.names("Deployment", NAMESPACE) == []


async def test_a_start_offset_reaches_the_pods_arguments(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes, startPosition={"from": "offset", "offset": 10})
    group = await reconcile_stream_and_group(operator_context)
    arguments = container_of(kubernetes)["args"]
    assert arguments[arguments.index("--start-from") + 1] == "offset"
    assert arguments[arguments.index("--start-offset") + 1] == "10"
    assert condition(group, "Stalled") == ("False", "ReplicasNotReady")


async def test_lag_positions_and_members_in_status_match_the_runtime(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    create_stream_and_group(kubernetes, replicas=1)
    await reconcile_stream_and_group(operator_context)
    (nothing_yet,) = (await poll_stream_lag(operator_context, NAMESPACE, STREAM, [GROUP])).values()
    assert nothing_yet.description is None  # no member has joined yet
    assert nothing_yet.database_error is None

    async with await sluice.connect(postgres_dsn) as store:
        await store.append(STREAM, [EventData("OrderPlaced", {"n": n}) for n in range(12)], partition_key="c-1")
        consumption = store.consumer_groups().consume(STREAM, group_id=GROUP, consumer_id=f"{GROUP}-pod")
        try:
            await take(consumption, 12)
            lags = await poll_stream_lag(operator_context, NAMESPACE, STREAM, [GROUP])
            await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP, lag=lags[GROUP])
            expected = await store.consumer_groups().describe(STREAM, GROUP)
        finally:
            await consumption.aclose()

    status = (kubernetes.get("ConsumerGroup", NAMESPACE, GROUP) or {})["status"]
    assert status["members"] == [{"consumerId": f"{GROUP}-pod", "partitions": [0, 1, 2, 3]}]
    assert status["lag"]["events"] == expected.lag_events
    assert sum(position["head"] for position in status["positions"]) == 12
    assert sum(position["head"] - position["committed"] for position in status["positions"]) == expected.lag_events
    assert condition(kubernetes.get("ConsumerGroup", NAMESPACE, GROUP), "DatabaseReachable") == ("True", "LagPolled")

    async with await sluice.connect(postgres_dsn) as store:  # the member is gone; 5 more events wait
        await store.append(STREAM, [EventData("OrderPlaced", {"n": n}) for n in range(5)], partition_key="c-2")
        behind = await store.consumer_groups().describe(STREAM, GROUP)
    lags = await poll_stream_lag(operator_context, NAMESPACE, STREAM, [GROUP])
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP, lag=lags[GROUP])
    status = (kubernetes.get("ConsumerGroup", NAMESPACE, GROUP) or {})["status"]
    assert status["lag"]["events"] == behind.lag_events == 5  # the member committed on leaving
    assert status["lag"]["seconds"] >= 0
    assert status["members"] == []


async def test_an_unreachable_database_in_the_lag_poll_makes_the_group_unready_until_it_answers(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    create_stream_and_group(kubernetes, replicas=1)
    await reconcile_stream_and_group(operator_context)
    kubernetes.mark_deployment_available(NAMESPACE, GROUP)

    kubernetes.put_secret(NAMESPACE, DATABASE_SECRET, {"uri": closed_port_dsn()})
    lags = await poll_stream_lag(operator_context, NAMESPACE, STREAM, [GROUP])
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP, lag=lags[GROUP])
    down = kubernetes.get("ConsumerGroup", NAMESPACE, GROUP)
    assert condition(down, "Ready") == ("False", "DatabaseUnreachable")
    assert condition(down, "DatabaseReachable") == ("False", "DatabaseUnreachable")
    assert condition(down, "WorkloadAvailable") == ("True", "MinimumReplicasAvailable")  # the pods keep running
    assert "secret-password" not in conditions(down)["Ready"]["message"]

    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP)  # a change between two polls
    assert condition(kubernetes.get("ConsumerGroup", NAMESPACE, GROUP), "DatabaseReachable")[0] == "False"

    kubernetes.put_secret(NAMESPACE, DATABASE_SECRET, {"uri": postgres_dsn})
    lags = await poll_stream_lag(operator_context, NAMESPACE, STREAM, [GROUP])
    await reconcile_named(operator_context, "ConsumerGroup", NAMESPACE, GROUP, lag=lags[GROUP])
    assert condition(kubernetes.get("ConsumerGroup", NAMESPACE, GROUP), "Ready") == ("True", "Reconciled")


async def test_an_api_server_error_fails_the_reconcile_and_is_counted(
    offline_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    create_stream_and_group(kubernetes)
    errors = RECONCILES.labels(kind="ConsumerGroup", result="error")
    before = errors._value.get()
    kubernetes.fail_next("apply_deployment", 500)
    with pytest.raises(ApiException) as raised:  # kopf (or the resync) retries it
        await reconcile_named(offline_context, "ConsumerGroup", NAMESPACE, GROUP)
    assert raised.value.status == 500
    assert errors._value.get() == before + 1
    assert kubernetes.names("Deployment", NAMESPACE) == []

    await reconcile_named(offline_context, "ConsumerGroup", NAMESPACE, GROUP)  # the retry succeeds
    assert kubernetes.names("Deployment", NAMESPACE) == [GROUP]
