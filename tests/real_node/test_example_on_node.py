"""The end-to-end example on a real node: the chart's operator pod reconciles it, real worker pods deliver
to a sink, the kubelet probes and restarts them, the Replay's Job runs, and a PostgreSQL crash is survived.

The tests run in file order on one example namespace (each builds on the state the previous one left);
the PostgreSQL crash comes last.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import sluice
from sluice.services.projections.status import projection_status
from sluice_devkit.demo_sink import CloudEventSink
from sluice_devkit.end_to_end_example import (
    CONSUMER_GROUP,
    PROJECTION,
    PROJECTION_TABLE,
    REPLAY,
    STREAM,
    load_example_manifests,
)
from sluice_devkit.read_model import order_summary_rows
from sluice_devkit.sample_events import append_sample_orders
from tests.real_node.node_cluster import OPERATOR_NAMESPACE, RealCluster, wait_for

pytestmark = [pytest.mark.kubernetes, pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(600)]

NAMESPACE = "shop-on-node"
FIRST_EVENTS = 200
WORKER_SELECTOR = f"app.kubernetes.io/instance={CONSUMER_GROUP}"
PROJECTION_SELECTOR = f"app.kubernetes.io/instance={PROJECTION}"
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


def _restart_counts(example: Example) -> dict[str, int]:
    return {
        pod["metadata"]["name"]: int(pod["status"]["containerStatuses"][0]["restartCount"]) for pod in example.workers()
    }


def _crash_looping(example: Example) -> list[str]:
    return [
        pod["metadata"]["name"]
        for pod in example.workers()
        for status in pod["status"].get("containerStatuses", [])
        if ((status.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
    ]


def test_a_worker_without_its_database_goes_unready_and_is_not_restarted(example: Example) -> None:
    cluster = example.cluster
    workers = wait_for(
        lambda: len(example.ready_workers()) == len(example.workers()) and example.ready_workers(), "Ready workers"
    )
    liveness = workers[0]["spec"]["containers"][0]["livenessProbe"]
    liveness_budget = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    restarts_before = _restart_counts(example)
    cluster.postgres.kill()
    down_since = time.monotonic()
    try:
        wait_for(
            lambda: example.workers() and not example.ready_workers(),
            "every worker unready (READY 0/1) while its database is down",
            timeout_seconds=60,
        )
        print(f"every worker unready {time.monotonic() - down_since:.1f} s after PostgreSQL was killed")
        # Stay down well past the time a failing liveness probe would take to restart the container.
        while time.monotonic() - down_since < liveness_budget + 15:
            assert _restart_counts(example) == restarts_before, "a worker was restarted while its database was down"
            assert not _crash_looping(example)
            assert not example.ready_workers()
            time.sleep(2)
    finally:
        cluster.postgres.restart()
    up_since = time.monotonic()
    wait_for(
        lambda: len(example.ready_workers()) == len(restarts_before),
        "every worker Ready again once the database is back",
        timeout_seconds=90,
    )
    print(f"every worker Ready again {time.monotonic() - up_since:.1f} s after PostgreSQL restarted")
    assert _restart_counts(example) == restarts_before
    example.append(50)
    wait_for(lambda: _everything_delivered(example), "every event at the sink", timeout_seconds=90)


def _watch_workers(example: Example) -> subprocess.Popen[str]:
    cluster = example.cluster
    return subprocess.Popen(
        [
            str(cluster.node.layout.kubernetes_bin_directory / "kubectl"),
            f"--kubeconfig={cluster.control_plane.kubeconfig_path}",
            "get",
            "pods",
            f"--namespace={NAMESPACE}",
            "-l",
            WORKER_SELECTOR,
            "--watch",
            "--output=json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _json_documents(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    documents: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return documents
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return documents  # the watch was stopped in the middle of a document
        documents.append(document)


def _scale(example: Example, replicas: int) -> None:
    example.cluster.kubectl(
        "scale", "consumergroup.sluice.dev", CONSUMER_GROUP, f"--namespace={NAMESPACE}", f"--replicas={replicas}"
    )


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_sigterm_on_scale_down_drains_within_the_grace_period(example: Example) -> None:
    replicas_before = len(example.workers())
    _scale(example, 2)
    wait_for(lambda: len(example.ready_workers()) == 2 and len(example.workers()) == 2, "2 Ready workers")
    wait_for(lambda: _everything_delivered(example), "every earlier event at the sink", timeout_seconds=90)
    first_received = len(example.sink.received)
    stop_trickle = threading.Event()

    def trickle() -> None:
        while not stop_trickle.is_set():
            example.append(5)
            time.sleep(0.2)

    trickler = threading.Thread(target=trickle, daemon=True)
    watch = _watch_workers(example)
    trickler.start()
    try:
        time.sleep(3)  # both workers busy with the trickle
        scaled_at = time.monotonic()
        scaled_wall_clock = datetime.now(UTC)
        _scale(example, 1)
        wait_for(
            lambda: (
                len(example.cluster.get_json("pods", f"--namespace={NAMESPACE}", "-l", WORKER_SELECTOR)["items"]) == 1
            ),
            "the scaled-down pod gone",
            timeout_seconds=90,
            interval=0.2,
        )
        print(f"scale 2 -> 1: the terminated pod gone {time.monotonic() - scaled_at:.1f} s after kubectl scale")
        time.sleep(3)  # the trickle goes on to the remaining worker
    finally:
        stop_trickle.set()
        trickler.join(timeout=30)
        watch.terminate()
        watched, _ = watch.communicate(timeout=30)
    wait_for(lambda: _everything_delivered(example), "every event at the sink", timeout_seconds=90)
    assert example.sink.distinct_event_count() == example.appended
    deliveries = Counter(event.subject for event in example.sink.received[first_received:])
    processed_twice = sorted(subject for subject, count in deliveries.items() if count > 1)
    assert not processed_twice, f"(partition/offset) delivered twice around the scale-down: {processed_twice}"
    terminated = [
        (pod, status["state"]["terminated"])
        for pod in _json_documents(watched)
        if pod["metadata"].get("deletionTimestamp")
        for status in (pod.get("status") or {}).get("containerStatuses", [])
        if (status.get("state") or {}).get("terminated")
    ]
    assert terminated, "the watch saw the scaled-down pod's container terminate"
    pod, state = terminated[-1]
    grace = int(pod["spec"]["terminationGracePeriodSeconds"])
    # The pod's deletion was requested after scaled_wall_clock (the node shares this machine's clock), so its grace
    # period ends after scaled_wall_clock + grace. deletionTimestamp is not used: the kubelet's final grace-0
    # delete moves it to the moment the pod stopped, and the watch does not always show the earlier value.
    grace_ends = scaled_wall_clock + timedelta(seconds=grace)
    finished = _parse_time(state["finishedAt"])
    print(
        f"scaled-down pod {pod['metadata']['name']}: exit code {state['exitCode']}, "
        f"finished {(grace_ends - finished).total_seconds():.0f} s before its {grace} s grace period ended; "
        f"{sum(deliveries.values())} deliveries during the test, none twice"
    )
    assert state["exitCode"] == 0, state
    assert state.get("reason") != "OOMKilled"
    assert finished < grace_ends
    _scale(example, replicas_before)
    wait_for(lambda: len(example.ready_workers()) == replicas_before, f"{replicas_before} Ready workers again")


async def _projection_state(dsn: str) -> tuple[int, int, int]:
    """(active version, reset generation, rows in the read model's view)."""
    async with await sluice.connect(dsn) as store:
        status = await projection_status(store, PROJECTION)
    rows = await order_summary_rows(dsn, PROJECTION_TABLE, limit=1)
    return status.active_version, status.reset_generation, rows.total


def test_a_projection_reset_rebuilds_with_a_real_pod(example: Example) -> None:
    cluster = example.cluster
    dsn = cluster.postgres.dsn()

    def projection() -> dict[str, Any]:
        return cluster.get_json("projection.sluice.dev", PROJECTION, f"--namespace={NAMESPACE}")

    wait_for(lambda: (projection().get("status") or {}).get("lag", {}).get("events") == 0, "the projection caught up")
    version_before, generation_before, rows_before = asyncio.run(_projection_state(dsn))
    pods_before = {
        pod["metadata"]["name"]
        for pod in cluster.get_json("pods", f"--namespace={NAMESPACE}", "-l", PROJECTION_SELECTOR)["items"]
    }
    generation = int(projection()["spec"].get("resetGeneration") or 0) + 1
    started_at = time.monotonic()
    cluster.kubectl(
        "patch",
        "projection.sluice.dev",
        PROJECTION,
        f"--namespace={NAMESPACE}",
        "--type=merge",
        f"--patch={json.dumps({'spec': {'resetGeneration': generation}})}",
    )

    def rebuilt_pod() -> dict[str, Any] | None:
        for pod in cluster.get_json("pods", f"--namespace={NAMESPACE}", "-l", PROJECTION_SELECTOR)["items"]:
            arguments = pod["spec"]["containers"][0].get("args") or pod["spec"]["containers"][0].get("command")
            fresh = pod["metadata"]["name"] not in pods_before and not pod["metadata"].get("deletionTimestamp")
            if fresh and _pod_ready(pod) and "--reset-generation" in arguments:
                position = arguments.index("--reset-generation")
                if arguments[position + 1] == str(generation):
                    return pod
        return None

    pod = wait_for(rebuilt_pod, f"a new projection pod with --reset-generation {generation} Ready", timeout_seconds=90)
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")

    def rebuilt() -> bool:
        version, stored_generation, _ = asyncio.run(_projection_state(dsn))
        status = projection().get("status") or {}
        return (
            version == version_before + 1
            and stored_generation == generation
            and status.get("lag", {}).get("events") == 0
            and (status.get("rebuild") or {}).get("phase") in {None, "Succeeded"}
        )

    wait_for(rebuilt, "the rebuilt version active and caught up", timeout_seconds=120)
    print(f"projection reset to generation {generation}: rebuilt and active in {time.monotonic() - started_at:.1f} s")
    version, stored_generation, rows = asyncio.run(_projection_state(dsn))
    assert (version, stored_generation) == (version_before + 1, generation)
    assert generation > generation_before
    assert rows == rows_before, "the rebuilt read model has every row the old version had"
    assert _ready(projection()) == "True"


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
    replicas = int(
        example.cluster.get_json("consumergroup.sluice.dev", CONSUMER_GROUP, f"--namespace={NAMESPACE}")["spec"][
            "replicas"
        ]
    )
    wait_for(
        lambda: len(example.ready_workers()) == replicas, "every worker Ready again, by itself", timeout_seconds=120
    )
    example.append(100)
    wait_for(lambda: _everything_delivered(example), "every event at the sink", timeout_seconds=120)
    assert example.sink.distinct_event_count() == example.appended


def test_the_retention_policy_reports_the_outage_too() -> None:
    assert OUTAGE_READINESS, "runs after the crash test, which records every object's readiness"
    assert OUTAGE_READINESS["retentionpolicy/orders-nightly"] == "False"
