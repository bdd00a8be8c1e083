"""The end-to-end example on a real node: the chart's operator pod reconciles it, real worker pods deliver
to a sink, the kubelet probes and restarts them, the Replay's Job runs, and a PostgreSQL crash is survived.

The tests run in file order on one example namespace (each builds on the state the previous one left);
the PostgreSQL crash comes last.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sluice_operator.local.demo_sink import CloudEventSink
from sluice_operator.local.end_to_end_example import CONSUMER_GROUP, PROJECTION, REPLAY, STREAM, load_example_manifests
from sluice_operator.local.sample_events import append_sample_orders
from tests.real_node.node_cluster import OPERATOR_NAMESPACE, RealCluster, wait_for

pytestmark = [pytest.mark.kubernetes, pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(600)]

NAMESPACE = "shop-on-node"
FIRST_EVENTS = 200
WORKER_SELECTOR = f"app.kubernetes.io/instance={CONSUMER_GROUP}"
APPLY_TO_RUNNING_BUDGET_SECONDS = 15.0
SLUICE_KINDS = ("eventstream", "consumergroup", "projection", "retentionpolicy")
OUTAGE_REPORTING_KINDS = SLUICE_KINDS
OUTAGE_READINESS: dict[str, str | None] = {}
"""Every example object's Ready status while PostgreSQL was down (filled by the crash test)."""


@dataclass
class Example:
    cluster: RealCluster
    sink: CloudEventSink
    replay: list[dict[str, Any]]
    appended: int = 0

    def append(self, count: int) -> None:
        asyncio.run(append_sample_orders(self.cluster.postgres.dsn(), stream=STREAM, count=count))
        self.appended += count

    def workers(self) -> list[dict[str, Any]]:
        items = self.cluster.get_json("pods", f"--namespace={NAMESPACE}", "-l", WORKER_SELECTOR)["items"]
        return [pod for pod in items if not pod["metadata"].get("deletionTimestamp")]

    def ready_workers(self) -> list[dict[str, Any]]:
        return [pod for pod in self.workers() if _pod_ready(pod)]

    def group_status(self) -> dict[str, Any]:
        body = self.cluster.get_json("consumergroup.sluice.dev", CONSUMER_GROUP, f"--namespace={NAMESPACE}")
        status: dict[str, Any] = body.get("status") or {}
        return status


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        entry["type"] == "Ready" and entry["status"] == "True"
        for entry in (pod.get("status") or {}).get("conditions", [])
    )


def _ready(body: dict[str, Any]) -> str | None:
    for entry in (body.get("status") or {}).get("conditions") or []:
        if entry.get("type") == "Ready":
            return str(entry.get("status"))
    return None


@pytest.fixture(scope="module")
def example(operator_release: RealCluster) -> Iterator[Example]:
    """examples/end-to-end in its own namespace (without its Replay), with a sink on the bridge and the
    first events appended once the stream is Ready."""
    cluster = operator_release
    sink = CloudEventSink(host=str(cluster.node.gateway))
    sink.start()
    manifests = load_example_manifests().for_local_platform(database_url=cluster.pod_database_url, sink_url=sink.url)
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}], namespace=NAMESPACE)
    cluster.apply([manifest for manifest in manifests if manifest["kind"] != "Replay"], namespace=NAMESPACE)
    state = Example(cluster=cluster, sink=sink, replay=[m for m in manifests if m["kind"] == "Replay"])
    wait_for(
        lambda: _ready(cluster.get_json("eventstream.sluice.dev", STREAM, f"--namespace={NAMESPACE}")) == "True",
        "the EventStream to be Ready",
        timeout_seconds=120,
    )
    state.append(FIRST_EVENTS)
    try:
        yield state
    finally:
        sink.stop()


def test_the_operator_runs_as_a_pod_of_the_chart(operator_release: RealCluster) -> None:
    pods = operator_release.get_json(
        "pods", f"--namespace={OPERATOR_NAMESPACE}", "-l", "app.kubernetes.io/component=operator"
    )["items"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["serviceAccountName"] == "sluice-operator"
    assert _pod_ready(pod)
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")


def test_every_example_kind_becomes_ready(example: Example) -> None:
    def not_ready() -> list[str]:
        missing = []
        for kind in SLUICE_KINDS:
            for body in example.cluster.get_json(f"{kind}.sluice.dev", f"--namespace={NAMESPACE}")["items"]:
                if _ready(body) != "True":
                    missing.append(f"{kind}/{body['metadata']['name']}")
        return missing

    wait_for(lambda: not not_ready(), "every Sluice object of the example to be Ready", timeout_seconds=120)


def test_the_group_reaches_lag_zero_with_real_worker_pods(example: Example) -> None:
    wait_for(
        lambda: (
            example.sink.distinct_event_count() >= FIRST_EVENTS
            and example.group_status().get("lag", {}).get("events") == 0
        ),
        "the sink to receive every event and the group to report lag 0",
        timeout_seconds=120,
    )
    workers = wait_for(lambda: len(example.ready_workers()) == 2 and example.ready_workers(), "2 Ready workers")
    for pod in workers:
        status = pod["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("containerd://")
        assert status["ready"] is True
        assert pod["status"]["podIP"].startswith("10.244.0.")
    logs = example.cluster.kubectl("logs", f"--namespace={NAMESPACE}", workers[0]["metadata"]["name"])
    first_line = json.loads(logs.splitlines()[0])
    assert isinstance(first_line, dict), "the worker logs JSON lines, which kubectl logs shows"
    projection = example.cluster.get_json("projection.sluice.dev", PROJECTION, f"--namespace={NAMESPACE}")
    wait_for(
        lambda: (
            example.cluster.get_json("projection.sluice.dev", PROJECTION, f"--namespace={NAMESPACE}")
            .get("status", {})
            .get("lag", {})
            .get("events")
            == 0
        ),
        f"the projection to catch up (was {projection.get('status', {}).get('lag')})",
    )


def test_probes_are_the_kubelets(example: Example) -> None:
    pod = example.ready_workers()[0]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    node = example.cluster.node.layout.node_name
    metrics = example.cluster.kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/metrics/probes")
    readiness = [
        line
        for line in metrics.splitlines()
        if line.startswith("prober_probe_total")
        and f'pod="{pod["metadata"]["name"]}"' in line
        and 'probe_type="Readiness"' in line
        and 'result="successful"' in line
    ]
    assert readiness, "the kubelet has probed the worker's readiness successfully"
    assert float(readiness[0].rsplit(" ", 1)[1]) >= 1


def test_the_image_runs_non_root_read_only_with_the_crs_resources(example: Example) -> None:
    cluster = example.cluster
    operator = cluster.get_json(
        "pods", f"--namespace={OPERATOR_NAMESPACE}", "-l", "app.kubernetes.io/component=operator"
    )["items"][0]["metadata"]["name"]
    assert cluster.kubectl("exec", f"--namespace={OPERATOR_NAMESPACE}", operator, "--", "id", "-u").strip() == "10001"
    completed = subprocess.run(
        [
            str(cluster.node.layout.kubernetes_bin_directory / "kubectl"),
            f"--kubeconfig={cluster.control_plane.kubeconfig_path}",
            "exec",
            f"--namespace={OPERATOR_NAMESPACE}",
            operator,
            "--",
            "touch",
            "/written-at-run-time",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert "Read-only file system" in completed.stderr + completed.stdout
    worker = example.ready_workers()[0]
    name = worker["metadata"]["name"]
    assert cluster.kubectl("exec", f"--namespace={NAMESPACE}", name, "--", "id", "-u").strip() == "10001"
    group = cluster.get_json("consumergroup.sluice.dev", CONSUMER_GROUP, f"--namespace={NAMESPACE}")
    assert worker["spec"]["containers"][0]["resources"] == group["spec"]["resources"]
    limit = cluster.kubectl(
        "exec", f"--namespace={NAMESPACE}", name, "--", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    )
    assert int(limit) == 256 * 1024 * 1024


def test_scaling_up_runs_a_new_worker_within_the_budget(example: Example) -> None:
    started_at = time.monotonic()
    example.cluster.kubectl(
        "scale", "consumergroup.sluice.dev", CONSUMER_GROUP, f"--namespace={NAMESPACE}", "--replicas=3"
    )

    def running() -> int:
        return sum(1 for pod in example.workers() if (pod.get("status") or {}).get("phase") == "Running")

    wait_for(lambda: running() == 3, "a third worker Running", timeout_seconds=60, interval=0.2)
    elapsed = time.monotonic() - started_at
    print(f"kubectl scale to a Running third worker: {elapsed:.1f} s")
    assert elapsed < APPLY_TO_RUNNING_BUDGET_SECONDS
    wait_for(lambda: len(example.ready_workers()) == 3, "3 Ready workers", timeout_seconds=60)


def _container_id(pod: dict[str, Any]) -> str:
    return str(pod["status"]["containerStatuses"][0]["containerID"]).removeprefix("containerd://")


def _ctr(example: Example, *arguments: str) -> None:
    layout = example.cluster.node.layout
    subprocess.run(
        [
            str(layout.node_bin_directory / "ctr"),
            f"--address={layout.containerd_socket}",
            "--namespace=k8s.io",
            *arguments,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _everything_delivered(example: Example) -> bool:
    return example.sink.distinct_event_count() >= example.appended


def test_a_killed_worker_container_is_restarted_and_nothing_is_lost(example: Example) -> None:
    pod = example.ready_workers()[0]
    name = pod["metadata"]["name"]
    restarts_before = pod["status"]["containerStatuses"][0]["restartCount"]
    _ctr(example, "tasks", "kill", "--signal=SIGKILL", _container_id(pod))

    def restarted() -> bool:
        body = example.cluster.get_json("pod", name, f"--namespace={NAMESPACE}")
        return body["status"]["containerStatuses"][0]["restartCount"] > restarts_before and _pod_ready(body)

    wait_for(restarted, "the kubelet to restart the killed container", timeout_seconds=90)
    example.append(100)
    wait_for(lambda: _everything_delivered(example), "every event at the sink", timeout_seconds=90)
    assert example.sink.distinct_event_count() == example.appended


def test_a_deleted_worker_pod_is_replaced_and_nothing_is_lost(example: Example) -> None:
    victim = example.ready_workers()[0]["metadata"]["name"]
    example.cluster.kubectl("delete", "pod", victim, f"--namespace={NAMESPACE}", "--wait=false")
    wait_for(
        lambda: (
            len(example.ready_workers()) == 3 and victim not in {p["metadata"]["name"] for p in example.ready_workers()}
        ),
        "a replacement pod Ready",
        timeout_seconds=90,
    )
    example.append(100)
    wait_for(lambda: _everything_delivered(example), "every event at the sink", timeout_seconds=90)
    assert example.sink.distinct_event_count() == example.appended


def test_the_replay_job_runs_to_succeeded(example: Example) -> None:
    received_before = len(example.sink.received)
    example.cluster.apply(example.replay, namespace=NAMESPACE)

    def phase() -> str | None:
        body = example.cluster.get_json("replay.sluice.dev", REPLAY, f"--namespace={NAMESPACE}")
        return (body.get("status") or {}).get("phase")

    wait_for(lambda: phase() == "Succeeded", "the Replay to succeed", timeout_seconds=180)
    pods = example.cluster.get_json("pods", f"--namespace={NAMESPACE}", "-l", "job-name")["items"]
    assert any(pod["status"]["phase"] == "Succeeded" for pod in pods), [p["status"]["phase"] for p in pods]
    wait_for(
        lambda: len(example.sink.received) - received_before >= example.appended,
        "the group to deliver every event again after the replay reset its offsets",
        timeout_seconds=120,
    )


def test_a_postgres_crash_under_load_is_survived(example: Example) -> None:
    cluster = example.cluster
    example.append(300)
    cluster.postgres.kill()

    def readiness(kinds: tuple[str, ...] = OUTAGE_REPORTING_KINDS) -> dict[str, str | None]:
        return {
            f"{kind}/{body['metadata']['name']}": _ready(body)
            for kind in kinds
            for body in cluster.get_json(f"{kind}.sluice.dev", f"--namespace={NAMESPACE}")["items"]
        }

    down_since = time.monotonic()
    try:
        wait_for(
            lambda: all(status == "False" for status in readiness().values()),
            "every Sluice object to report Ready=False while PostgreSQL is down",
            timeout_seconds=90,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}: {readiness()}") from None
    print(f"every Sluice object Ready=False {time.monotonic() - down_since:.1f} s after the kill")
    OUTAGE_READINESS.update(readiness(SLUICE_KINDS))
    time.sleep(3)
    cluster.postgres.restart()
    up_since = time.monotonic()
    try:
        wait_for(
            lambda: all(status == "True" for status in readiness().values()),
            "every Sluice object back to Ready=True",
            timeout_seconds=120,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}: {readiness()}") from None
    print(f"every Sluice object Ready=True {time.monotonic() - up_since:.1f} s after the restart")
    wait_for(lambda: len(example.ready_workers()) == 3, "every worker Ready again, by itself", timeout_seconds=120)
    example.append(100)
    wait_for(lambda: _everything_delivered(example), "every event at the sink", timeout_seconds=120)
    assert example.sink.distinct_event_count() == example.appended


def test_the_retention_policy_reports_the_outage_too() -> None:
    assert OUTAGE_READINESS, "runs after the crash test, which records every object's readiness"
    assert OUTAGE_READINESS["retentionpolicy/orders-nightly"] == "False"
