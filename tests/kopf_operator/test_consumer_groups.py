"""ConsumerGroups through the running operator: the Deployment, /scale, drift repair, availability, lag, and
the pod's command run locally against the same PostgreSQL (no kubelet runs in the test control plane)."""

from __future__ import annotations

import asyncio
import base64
import http.server
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sluice
from tests.custom_resources.cluster import KubernetesCluster, wait_until
from tests.custom_resources.manifests import REPOSITORY_ROOT, load_example
from tests.kopf_operator.conftest import DATABASE_SECRET
from tests.kopf_operator.helpers import condition_status, conditions, reconciled_with, wait_for_object
from tests.kopf_operator.operator_process import OperatorProcess, free_port
from tests.kopf_operator.workloads import get_deployment, mark_pods_ready, pod_process_environment

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

GROUP = "email-notifications"
SLUICE_COMMAND = REPOSITORY_ROOT / ".venv" / "bin" / "sluice"


def create_stream_and_group(cluster: KubernetesCluster, namespace: str, **group_spec: Any) -> None:
    cluster.create(namespace, load_example("event-stream.yaml"))
    group = load_example("consumer-group.yaml")
    group["spec"].update(group_spec)
    cluster.create(namespace, group)


def deployment_of(cluster: KubernetesCluster, namespace: str, done: Any = None) -> dict[str, Any]:
    found = wait_until(
        lambda: get_deployment(cluster, namespace, GROUP),
        lambda deployment: deployment is not None and (done is None or done(deployment)),
        timeout_seconds=40,
    )
    assert found is not None
    return found


async def test_scale_and_a_deployment_deleted_by_hand_comes_back(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess
) -> None:
    namespace = operator_namespace
    create_stream_and_group(kubernetes_cluster, namespace)
    deployment = deployment_of(kubernetes_cluster, namespace)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "ConsumerGroup"
    group = wait_for_object(
        kubernetes_cluster,
        namespace,
        "ConsumerGroup",
        GROUP,
        lambda body: (body.get("status") or {}).get("replicas") == 2,
    )
    selector = group["status"]["selector"]
    scale = kubernetes_cluster.get_scale(namespace, "ConsumerGroup", GROUP)
    assert scale["status"]["selector"] == selector
    assert scale["status"]["replicas"] == 2

    kubernetes_cluster.kubectl("scale", "consumergroup", GROUP, "--replicas=5", namespace=namespace)
    deployment_of(kubernetes_cluster, namespace, lambda deployment: deployment["spec"]["replicas"] == 5)
    scaled = wait_for_object(
        kubernetes_cluster,
        namespace,
        "ConsumerGroup",
        GROUP,
        lambda body: body["status"].get("replicas") == 5 and body["status"].get("idleReplicas") == 1,
    )
    assert condition_status(scaled, "ReplicasIdle") == "True"  # 5 replicas, 4 partitions

    first_uid = deployment["metadata"]["uid"]
    kubernetes_cluster.kubectl("delete", "deployment", GROUP, "--wait=false", namespace=namespace)
    recreated = deployment_of(kubernetes_cluster, namespace, lambda found: found["metadata"]["uid"] != first_uid)
    assert recreated["spec"]["replicas"] == 5


async def test_workload_available_once_pods_are_ready(
    kubernetes_cluster: KubernetesCluster, operator_namespace: str, running_operator: OperatorProcess
) -> None:
    # No kubelet runs here: the test acts as one and reports the pods Running and Ready.
    namespace = operator_namespace
    create_stream_and_group(kubernetes_cluster, namespace, replicas=1)
    waiting = wait_for_object(
        kubernetes_cluster, namespace, "ConsumerGroup", GROUP, reconciled_with("WorkloadAvailable", "False")
    )
    assert condition_status(waiting, "Ready") == "False"
    selector = waiting["status"]["selector"]
    wait_until(
        lambda: mark_pods_ready(kubernetes_cluster, namespace, selector), lambda count: count == 1, timeout_seconds=20
    )
    # DatabaseReachable comes from the lag poll, once per resync: wait for it as well as for Ready.
    ready_and_polled = reconciled_with("Ready", "True")
    ready = wait_for_object(
        kubernetes_cluster,
        namespace,
        "ConsumerGroup",
        GROUP,
        lambda body: ready_and_polled(body) and condition_status(body, "DatabaseReachable") is not None,
    )
    assert ready["status"]["readyReplicas"] == 1
    assert conditions(ready)["WorkloadAvailable"]["reason"] == "MinimumReplicasAvailable"
    assert condition_status(ready, "DatabaseReachable") == "True"

    # The database goes away (here: the Secret now points where nothing listens): Ready falls, then returns.
    good_uri = kubernetes_cluster.kubectl(
        "get", "secret", DATABASE_SECRET, "-o", "jsonpath={.data.uri}", namespace=namespace
    ).stdout
    bad_uri = base64.b64encode(f"postgresql://nobody@127.0.0.1:{free_port()}/gone".encode()).decode()
    kubernetes_cluster.kubectl(
        "patch",
        "secret",
        DATABASE_SECRET,
        "--type=merge",
        "-p",
        f'{{"data":{{"uri":"{bad_uri}"}}}}',
        namespace=namespace,
    )
    down = wait_for_object(
        kubernetes_cluster, namespace, "ConsumerGroup", GROUP, lambda body: condition_status(body, "Ready") == "False"
    )
    assert conditions(down)["Ready"]["reason"] == "DatabaseUnreachable"
    assert condition_status(down, "WorkloadAvailable") == "True"
    kubernetes_cluster.kubectl(
        "patch",
        "secret",
        DATABASE_SECRET,
        "--type=merge",
        "-p",
        f'{{"data":{{"uri":"{good_uri}"}}}}',
        namespace=namespace,
    )
    wait_for_object(
        kubernetes_cluster, namespace, "ConsumerGroup", GROUP, lambda body: condition_status(body, "Ready") == "True"
    )


class RecordingSink(http.server.ThreadingHTTPServer):
    """An HTTP sink on loopback that records the CloudEvent id of every POST."""

    def __init__(self) -> None:
        self.received: list[str] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received.append(self.headers.get("ce-id") or "")
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"


@pytest.fixture
def recording_sink() -> Iterator[RecordingSink]:
    sink = RecordingSink()
    thread = threading.Thread(target=sink.serve_forever, name="recording-sink", daemon=True)
    thread.start()
    yield sink
    sink.shutdown()
    sink.server_close()
    thread.join(timeout=5)


async def group_lag(dsn: str) -> int:
    async with await sluice.connect(dsn) as store:
        return (await store.consumer_groups().describe("orders", GROUP)).lag_events


async def test_the_pod_command_consumes_and_lag_in_status_matches_the_runtime(  # noqa: PLR0917 (fixtures)
    kubernetes_cluster: KubernetesCluster,
    operator_namespace: str,
    running_operator: OperatorProcess,
    postgres_dsn: str,
    recording_sink: RecordingSink,
    tmp_path: Path,
) -> None:
    namespace = operator_namespace
    create_stream_and_group(
        kubernetes_cluster,
        namespace,
        replicas=1,
        startPosition={"from": "earliest"},
        handler={"sink": {"url": recording_sink.url}},
    )
    container = deployment_of(kubernetes_cluster, namespace)["spec"]["template"]["spec"]["containers"][0]
    async with await sluice.connect(postgres_dsn) as store:
        await store.append(
            "orders",
            [sluice.EventData(event_type="OrderPlaced", data={"n": n}) for n in range(12)],
            partition_key="customer-1",
        )

    # Exactly the pod's command and environment, run here. One addition: SLUICE_HTTP_PORT, because local
    # processes share one network namespace and the pod's port 8080 may be taken on this machine.
    environment = {
        **os.environ,
        **pod_process_environment(kubernetes_cluster, namespace, container, pod_name=f"{GROUP}-local-pod"),
        "SLUICE_HTTP_PORT": str(free_port()),
    }
    assert container["command"] == ["sluice"]
    log_path = tmp_path / "consumer.log"
    with log_path.open("wb") as log:
        consumer = subprocess.Popen(  # noqa: ASYNC220 (started, then polled without blocking)
            [str(SLUICE_COMMAND), *container["args"]], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 40
        while len(recording_sink.received) < 12 and time.monotonic() < deadline:
            assert consumer.poll() is None, log_path.read_text()
            await asyncio.sleep(0.2)
        assert len(recording_sink.received) == 12, log_path.read_text()
        caught_up = wait_for_object(
            kubernetes_cluster,
            namespace,
            "ConsumerGroup",
            GROUP,
            lambda body: (
                ((body.get("status") or {}).get("lag") or {}).get("events") == 0 and body["status"].get("members")
            ),
        )
        assert caught_up["status"]["members"] == [{"consumerId": f"{GROUP}-local-pod", "partitions": [0, 1, 2, 3]}]
        assert await group_lag(postgres_dsn) == 0
    finally:
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=30) == 0, log_path.read_text()

    async with await sluice.connect(postgres_dsn) as store:
        await store.append(
            "orders",
            [sluice.EventData(event_type="OrderPlaced", data={"n": n}) for n in range(5)],
            partition_key="customer-2",
        )
    behind = wait_for_object(
        kubernetes_cluster,
        namespace,
        "ConsumerGroup",
        GROUP,
        lambda body: (body["status"].get("lag") or {}).get("events") == 5,
    )
    assert await group_lag(postgres_dsn) == 5
    assert sum(position["head"] - position["committed"] for position in behind["status"]["positions"]) == 5
    assert behind["status"]["lag"]["seconds"] >= 0
    assert behind["status"]["members"] == []
