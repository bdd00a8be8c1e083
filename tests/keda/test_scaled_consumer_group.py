"""The documented KEDA path at the API level: a ScaledObject whose scaleTargetRef is a ConsumerGroup, with the
``postgresql`` trigger on Sluice's lag query (examples/autoscaling/keda-scaledobject.yaml), against a real
PostgreSQL, the operator (as in tests/kopf_operator) and KEDA built from its Go module.

KEDA creates the HPA; the HPA reads the lag through kube-apiserver's aggregation layer and KEDA's adapter and
scales the ConsumerGroup through /scale; the operator's Deployment follows. No kubelet runs here, so this stops
at the replica counts (pods consuming are the real-node suite's part).

The database is a PostgreSQL of this module's own, because one test stops it: a lag query that cannot run must
not scale the group to zero.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import sluice
from sluice import ConsumerGroupOptions, EventData, OffsetCommitStrategy
from sluice.storage.postgres.embedded import EmbeddedPostgres
from tests.custom_resources.cluster import KubernetesCluster, wait_until
from tests.custom_resources.manifests import load_example
from tests.examples.autoscaling import example_stream_partitions, one_document
from tests.kopf_operator.helpers import wait_for_object
from tests.kopf_operator.operator_process import OperatorProcess

pytestmark = [pytest.mark.kubernetes, pytest.mark.keda, pytest.mark.postgres, pytest.mark.slow]

GROUP = load_example("consumer-group.yaml")["metadata"]["name"]
STREAM = load_example("event-stream.yaml")["metadata"]["name"]
PARTITIONS = example_stream_partitions()
TARGET_LAG_PER_REPLICA = 1000
SCALE_TIMEOUT_SECONDS = 120
"""KEDA polls every 2 s here; the HPA controller syncs every 3 s and its first read may wait for discovery."""
POLLING_INTERVAL_SECONDS = 2
COOLDOWN_SECONDS = 5

MANUAL = ConsumerGroupOptions(
    commit_strategy=OffsetCommitStrategy.MANUAL,
    session_timeout=timedelta(seconds=5),
    heartbeat_interval=timedelta(milliseconds=500),
    batch_size=500,
)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as server:
        yield server


@pytest.fixture
async def database_dsn(own_postgres: EmbeddedPostgres, request: pytest.FixtureRequest) -> str:
    name = f"keda_{request.node.name[:40].lower().replace('-', '_')}"
    admin = await asyncpg.connect(own_postgres.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return own_postgres.dsn(name)


@pytest.fixture
def scaled_namespace(keda_cluster: KubernetesCluster, database_dsn: str, request: pytest.FixtureRequest) -> str:
    name = f"keda-{request.node.name[5:30].replace('_', '-').strip('-')}"
    keda_cluster.create_namespace(name)
    keda_cluster.kubectl(
        "create", "secret", "generic", "sluice-database", f"--from-literal=uri={database_dsn}", namespace=name
    )
    return name


@pytest.fixture
def operator(
    keda_cluster: KubernetesCluster, scaled_namespace: str, database_dsn: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        kubeconfig_path=keda_cluster.kubeconfig_path,
        namespace=scaled_namespace,
        default_dsn=database_dsn,
        log_path=tmp_path / "operator.log",
    )
    with process:
        yield process
    print("operator log:\n" + process.log_tail(100))


def scaled_object(*, min_replicas: int) -> dict[str, Any]:
    """The example ScaledObject, faster: KEDA polls every 2 s, cools down after 5 s, no down-stabilization."""
    body = copy.deepcopy(one_document("keda-scaledobject.yaml", "ScaledObject"))
    spec = body["spec"]
    spec["minReplicaCount"] = min_replicas
    spec["pollingInterval"] = POLLING_INTERVAL_SECONDS
    spec["cooldownPeriod"] = COOLDOWN_SECONDS
    spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = 0
    assert spec["triggers"][0]["metadata"]["targetQueryValue"] == str(TARGET_LAG_PER_REPLICA)
    return body


def apply(cluster: KubernetesCluster, namespace: str, *documents: dict[str, Any]) -> None:
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        namespace=namespace,
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)}),
    )


def replicas(cluster: KubernetesCluster, namespace: str) -> int:
    return int(cluster.get(namespace, "ConsumerGroup", GROUP)["spec"]["replicas"])


def wait_for_replicas(cluster: KubernetesCluster, namespace: str, expected: int) -> float:
    """Seconds until the ConsumerGroup's spec.replicas is ``expected`` (the Deployment is checked to follow)."""
    started = time.monotonic()
    wait_until(
        lambda: replicas(cluster, namespace),
        lambda value: value == expected,
        timeout_seconds=SCALE_TIMEOUT_SECONDS,
        interval=0.5,
    )
    elapsed = time.monotonic() - started
    wait_until(
        lambda: (
            cluster.kubectl("get", "deployment", GROUP, "-o", "jsonpath={.spec.replicas}", namespace=namespace).stdout
        ),
        lambda value: value == str(expected),
        timeout_seconds=40,
    )
    return elapsed


def scaled_object_conditions(cluster: KubernetesCluster, namespace: str) -> dict[str, dict[str, Any]]:
    body = json.loads(cluster.kubectl("get", "scaledobject", GROUP, "-o", "json", namespace=namespace).stdout)
    return {condition["type"]: condition for condition in (body.get("status") or {}).get("conditions") or []}


class Backlog:
    """Appends events with the library and commits as a member of the group, so the lag is what the test says."""

    def __init__(self, store: sluice.EventStore) -> None:
        self.store = store
        self.heads = dict.fromkeys(range(PARTITIONS), 0)
        """Events appended per partition: the offset to commit for a lag of 0 there."""

    async def append(self, count: int) -> None:
        for partition in range(PARTITIONS):
            share = count // PARTITIONS + (1 if partition < count % PARTITIONS else 0)
            for start in range(0, share, 200):
                batch = [EventData("OrderPlaced", {"n": number}) for number in range(start, min(share, start + 200))]
                await self.store.append(STREAM, batch, partition=partition)
            self.heads[partition] += share

    async def commit_everything(self) -> None:
        """A member joins, commits the head of every partition and leaves: the lag is then 0."""
        groups = self.store.consumer_groups()
        async with groups.consume(STREAM, group_id=GROUP, consumer_id="worker-test", options=MANUAL) as consumption:
            async with asyncio.timeout(30):
                async for _ in consumption:
                    break
            await groups.commit(STREAM, group_id=GROUP, consumer_id="worker-test", offsets=dict(self.heads))
        assert (await groups.describe(STREAM, GROUP)).lag_events == 0

    async def lag(self) -> int:
        return (await self.store.consumer_groups().describe(STREAM, GROUP)).lag_events


async def start_group(cluster: KubernetesCluster, namespace: str, dsn: str) -> tuple[sluice.EventStore, Backlog]:
    """The example stream and group through the operator, with one event per partition committed (so the
    group has positions the lag query can read, and a lag of 0)."""
    apply(cluster, namespace, load_example("event-stream.yaml"), load_example("consumer-group.yaml"))
    wait_for_object(
        cluster, namespace, "ConsumerGroup", GROUP, lambda body: bool((body.get("status") or {}).get("selector"))
    )
    store = await sluice.connect(dsn)
    backlog = Backlog(store)
    await backlog.append(PARTITIONS)
    await backlog.commit_everything()
    return store, backlog


def show(cluster: KubernetesCluster, namespace: str) -> str:
    output = cluster.kubectl("get", "hpa,scaledobject,consumergroup", "-o", "wide", namespace=namespace).stdout
    print(output)
    return output


@pytest.mark.timeout(600)
async def test_lag_raises_replicas_and_no_lag_returns_them_to_the_minimum_then_to_zero(
    keda_cluster: KubernetesCluster, scaled_namespace: str, operator: OperatorProcess, database_dsn: str
) -> None:
    namespace = scaled_namespace
    store, backlog = await start_group(keda_cluster, namespace, database_dsn)
    try:
        apply(
            keda_cluster,
            namespace,
            one_document("keda-scaledobject.yaml", "TriggerAuthentication"),
            scaled_object(min_replicas=1),
        )
        hpa_name = f"keda-hpa-{GROUP}"
        wait_until(
            lambda: (
                keda_cluster.kubectl(
                    "get", "hpa", hpa_name, "--ignore-not-found", "-o", "name", namespace=namespace
                ).stdout
            ),
            bool,
            timeout_seconds=60,
        )
        hpa = json.loads(keda_cluster.kubectl("get", "hpa", hpa_name, "-o", "json", namespace=namespace).stdout)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "ConsumerGroup",
            "name": GROUP,
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, PARTITIONS)
        # No lag: the HPA brings the example's 2 replicas down to the minimum.
        down_seconds = wait_for_replicas(keda_cluster, namespace, 1)
        print(f"no lag: replicas 2 -> 1 after {down_seconds:.1f} s")

        # 2,500 events of lag at 1,000 per replica: 3 replicas.
        appended_at = time.monotonic()
        await backlog.append(2500)
        assert await backlog.lag() == 2500
        wait_for_replicas(keda_cluster, namespace, 3)
        up_seconds = time.monotonic() - appended_at
        print(f"backlog of 2500 appended -> replicas 3 after {up_seconds:.1f} s")
        show(keda_cluster, namespace)

        # More lag than the partitions can use: capped at maxReplicaCount (the stream's partitions).
        await backlog.append(10_000)
        wait_for_replicas(keda_cluster, namespace, PARTITIONS)

        # Lag back to 0: the minimum again.
        await backlog.commit_everything()
        lag_gone_at = time.monotonic()
        wait_for_replicas(keda_cluster, namespace, 1)
        print(f"lag 0 -> replicas 1 after {time.monotonic() - lag_gone_at:.1f} s")

        # minReplicaCount 0: KEDA scales the idle group to zero after its cooldown ...
        apply(keda_cluster, namespace, scaled_object(min_replicas=0))
        zero_seconds = wait_for_replicas(keda_cluster, namespace, 0)
        print(f"minReplicaCount 0, no lag -> replicas 0 after {zero_seconds:.1f} s")
        show(keda_cluster, namespace)

        # ... and activates it when events arrive.
        activated_at = time.monotonic()
        await backlog.append(10)
        wait_until(
            lambda: replicas(keda_cluster, namespace), lambda value: value >= 1, timeout_seconds=SCALE_TIMEOUT_SECONDS
        )
        print(f"10 events on a group at zero -> replicas >= 1 after {time.monotonic() - activated_at:.1f} s")
        show(keda_cluster, namespace)
    finally:
        await store.close()


@pytest.mark.timeout(600)
async def test_a_lag_query_that_fails_does_not_scale_to_zero(
    keda_cluster: KubernetesCluster,
    scaled_namespace: str,
    operator: OperatorProcess,
    database_dsn: str,
    own_postgres: EmbeddedPostgres,
) -> None:
    namespace = scaled_namespace
    store, backlog = await start_group(keda_cluster, namespace, database_dsn)
    try:
        await backlog.append(2500)
        apply(
            keda_cluster,
            namespace,
            one_document("keda-scaledobject.yaml", "TriggerAuthentication"),
            scaled_object(min_replicas=0),
        )
        wait_for_replicas(keda_cluster, namespace, 3)
    finally:
        await store.close()

    own_postgres.kill()  # the database is down: the lag query cannot run
    try:
        observed: set[int] = set()
        # 15 polling intervals, 6 cooldowns and 10 HPA syncs:
        ended = time.monotonic() + 15 * POLLING_INTERVAL_SECONDS
        while time.monotonic() < ended:
            observed.add(replicas(keda_cluster, namespace))
            await asyncio.sleep(1)
        conditions = scaled_object_conditions(keda_cluster, namespace)
        show(keda_cluster, namespace)
        print(json.dumps(conditions, indent=2))
    finally:
        own_postgres.restart()
    assert 0 not in observed, observed
    assert observed == {3}, observed
    ready = conditions["Ready"]
    assert ready["status"] == "False", ready
