"""KEDA scaling the end-to-end example's ConsumerGroup with real worker pods on the real node: the example
ScaledObject (postgresql trigger on Sluice's lag query) with minReplicaCount 0, so the group idles at zero
replicas; a backlog activates it, the HPA raises it, real workers drain the lag and the group returns to zero.

KEDA runs as local processes (``LocalKeda``): its metrics adapter listens on the bridge gateway and
kube-apiserver reaches it through a manual EndpointSlice (``--enable-aggregator-routing``).

The cluster is the one test_example_on_node.py used before (package-scoped). The example here has a
namespace and a database of its own (``keda``), so its stream, group and lag are not the other example's.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from sluice_devkit.demo_sink import CloudEventSink
from sluice_devkit.end_to_end_example import CONSUMER_GROUP, STREAM, load_example_manifests
from sluice_devkit.keda import LocalKeda, build_keda_binaries
from sluice_devkit.sample_events import append_sample_orders
from tests.custom_resources.manifests import REPOSITORY_ROOT
from tests.examples.autoscaling import one_document
from tests.real_node.node_cluster import RealCluster, wait_for

pytestmark = [pytest.mark.kubernetes, pytest.mark.node, pytest.mark.keda, pytest.mark.slow, pytest.mark.timeout(900)]

NAMESPACE = "shop-keda"
DATABASE = "keda"
WORKER_SELECTOR = f"app.kubernetes.io/instance={CONSUMER_GROUP}"
KEDA_BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "keda" / "build.sh"

BACKLOG = 6_000
"""Events appended to the group at zero replicas."""


async def _create_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        entry["type"] == "Ready" and entry["status"] == "True"
        for entry in (pod.get("status") or {}).get("conditions", [])
    )


@pytest.fixture(scope="module")
def keda_on_node(operator_release: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKeda]:
    keda_bin = build_keda_binaries(KEDA_BUILD_SCRIPT)
    with LocalKeda(keda_bin, operator_release.control_plane, tmp_path_factory.mktemp("keda-on-node")) as keda:
        yield keda


def test_a_backlog_activates_the_group_from_zero_and_real_workers_drain_it(
    operator_release: RealCluster, keda_on_node: LocalKeda
) -> None:
    cluster = operator_release
    asyncio.run(_create_database(cluster.postgres.dsn(), DATABASE))
    database_dsn = cluster.postgres.dsn(DATABASE)
    sink = CloudEventSink(host=str(cluster.node.gateway))
    sink.start()
    try:
        manifests = load_example_manifests().for_local_platform(
            database_url=cluster.pod_database_url.rsplit("/", 1)[0] + f"/{DATABASE}", sink_url=sink.url
        )
        cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}], namespace=NAMESPACE)
        cluster.apply([manifest for manifest in manifests if manifest["kind"] != "Replay"], namespace=NAMESPACE)

        def group() -> dict[str, Any]:
            return cluster.get_json("consumergroup.sluice.dev", CONSUMER_GROUP, f"--namespace={NAMESPACE}")

        def lag() -> int | None:
            return ((group().get("status") or {}).get("lag") or {}).get("events")

        def ready_workers() -> int:
            pods = cluster.get_json("pods", f"--namespace={NAMESPACE}", "-l", WORKER_SELECTOR)["items"]
            return sum(1 for pod in pods if not pod["metadata"].get("deletionTimestamp") and _pod_ready(pod))

        def append(count: int) -> None:
            asyncio.run(append_sample_orders(database_dsn, stream=STREAM, count=count))

        # The group exists and has committed positions (what the lag query reads): first events drained.
        wait_for(lambda: ready_workers() >= 1, "a first Ready worker", timeout_seconds=180)
        append(50)
        wait_for(
            lambda: lag() == 0 and sink.distinct_event_count() >= 50, "the first events drained", timeout_seconds=120
        )

        scaled_object = copy.deepcopy(one_document("keda-scaledobject.yaml", "ScaledObject"))
        spec = scaled_object["spec"]
        spec.update(minReplicaCount=0, pollingInterval=2, cooldownPeriod=5)
        spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = 0
        cluster.apply(
            [one_document("keda-scaledobject.yaml", "TriggerAuthentication"), scaled_object], namespace=NAMESPACE
        )
        wait_for(
            lambda: group()["spec"]["replicas"] == 0 and ready_workers() == 0,
            "the idle group at zero",
            timeout_seconds=120,
        )

        appended_at = time.monotonic()
        # Large enough that one worker cannot drain it before the HPA's first syncs (every 3 s) see the lag:
        # with 3,000 a fast first worker sometimes finished alone and the HPA never had a reason to scale.
        append(BACKLOG)
        wait_for(lambda: ready_workers() >= 1, "a worker started by KEDA", timeout_seconds=120, interval=0.2)
        first_worker_seconds = time.monotonic() - appended_at
        try:
            wait_for(
                lambda: group()["spec"]["replicas"] >= 2, "the HPA raising replicas", timeout_seconds=120, interval=0.5
            )
        except AssertionError:
            print(cluster.kubectl("describe", "hpa,scaledobject", f"--namespace={NAMESPACE}"))
            raise
        raised_seconds = time.monotonic() - appended_at
        wait_for(
            lambda: lag() == 0 and sink.distinct_event_count() >= BACKLOG + 50,
            "the backlog drained",
            timeout_seconds=300,
        )
        drained_seconds = time.monotonic() - appended_at
        print(
            f"backlog of {BACKLOG} on a group at zero: first worker Ready after {first_worker_seconds:.1f} s, "
            f"replicas >= 2 after {raised_seconds:.1f} s, lag 0 after {drained_seconds:.1f} s"
        )
        print(cluster.kubectl("get", "hpa,scaledobject,consumergroup,pods", f"--namespace={NAMESPACE}", "-o", "wide"))
        wait_for(lambda: group()["spec"]["replicas"] == 0, "the group back at zero", timeout_seconds=120)
        wait_for(lambda: ready_workers() == 0, "the workers gone", timeout_seconds=120)
        print(cluster.kubectl("get", "hpa,scaledobject,consumergroup,pods", f"--namespace={NAMESPACE}", "-o", "wide"))
    finally:
        sink.stop()
