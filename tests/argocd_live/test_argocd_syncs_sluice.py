"""Argo CD deploys Sluice from a Git repository into an empty cluster and reads its health (issue 15).

A real Argo CD (application controller and repo server built from its Go module, Redis from Debian) syncs the
two Applications of deploy/argocd/ as written (only the repository URL and the chart's image values are the
test's): "platform" (charts/sluice) and "workloads" (examples/end-to-end/) from a Git repository served by
git daemon on loopback, onto a real node (the operator and the workers run as pods). Health comes from Sluice's
health script, installed by merging deploy/argocd/argocd-cm.yaml into argocd-cm.

The tests run in file order on one cluster; each starts from the state the previous one left. Timings are
printed as ``[argocd timing] ...`` lines (pytest -s shows them; docs/argocd.md quotes measured values).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import yaml

import sluice
from sluice.core.errors import StreamNotFoundError
from sluice_devkit.argocd import ARGOCD_NAMESPACE
from sluice_devkit.end_to_end_example import CONSUMER_GROUP, REPLAY, STREAM
from sluice_devkit.sample_events import append_sample_orders
from tests.argocd_live.gitops import (
    EXAMPLE_PATH,
    PLATFORM_APPLICATION_FILE,
    WORKLOADS_APPLICATION_FILE,
    GitOps,
    application,
    health,
    healthy_and_synced,
    load_yaml,
    object_readiness,
    resource_health,
    sync_status,
    timed,
    wait_for_application,
    with_sync_wave,
)
from tests.real_node.node_cluster import wait_for

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.node,
    pytest.mark.slow,
    pytest.mark.argocd,
    pytest.mark.timeout(900),
]

PLATFORM = "sluice-platform"
WORKLOADS = "sluice-workloads"
WORKLOADS_NAMESPACE = "shop"
PLATFORM_NAMESPACE = "sluice-system"
CONSUMER_GROUP_FILE = f"{EXAMPLE_PATH}/20-email-notifications.yaml"
SCRATCH_STREAM_FILE = f"{EXAMPLE_PATH}/15-scratch-stream.yaml"
INVALID_GROUP = "audit-notifications"
INVALID_GROUP_FILE = f"{EXAMPLE_PATH}/25-audit-notifications.yaml"
SCRATCH_STREAM = "scratch"
REPLAY_FILE = f"{EXAMPLE_PATH}/50-replay-orders.yaml"
SLOW_REPLAY = "orders-replayed-slowly"
SLOW_REPLAY_FILE = f"{EXAMPLE_PATH}/55-replay-slowly.yaml"
SLOW_REPLAY_RATE = 100
REPLAYED_BACKLOG = 600
"""Events appended before the slow replay: with what the stream holds, more than 9 s at SLOW_REPLAY_RATE."""
WORKER_SELECTOR = f"app.kubernetes.io/instance={CONSUMER_GROUP}"
SLUICE_CRDS = (
    "eventstreams.sluice.dev",
    "consumergroups.sluice.dev",
    "projections.sluice.dev",
    "replays.sluice.dev",
    "retentionpolicies.sluice.dev",
)
QUIET_PERIOD_SECONDS = 25.0
"""How long the drift test watches for OutOfSync: more than two of Argo CD's app-resync periods (10 s here)."""


class HealthHistory:
    """Every Application and resource health the polls saw, in order of first sight."""

    def __init__(self) -> None:
        self.application: list[str] = []
        self.resources: dict[str, list[str]] = {}

    def observe(self, status: dict[str, Any]) -> None:
        value = health(status)
        if value is not None and (not self.application or self.application[-1] != value):
            self.application.append(value)
        for name, resource_value in resource_health(status).items():
            seen = self.resources.setdefault(name, [])
            if resource_value is not None and (not seen or seen[-1] != resource_value):
                seen.append(resource_value)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _condition(body: dict[str, Any], wanted: str) -> dict[str, Any]:
    for entry in (body.get("status") or {}).get("conditions") or []:
        if entry.get("type") == wanted:
            return dict(entry)
    raise AssertionError(f"{body['kind']}/{body['metadata']['name']} has no {wanted} condition")


def _sluice_object(gitops: GitOps, kind: str, name: str) -> dict[str, Any]:
    return gitops.cluster.get_json(f"{kind.lower()}.sluice.dev", name, f"--namespace={WORKLOADS_NAMESPACE}")


async def _stored_partitions(dsn: str, name: str) -> int | None:
    async with await sluice.connect(dsn) as store:
        try:
            return (await store.get_stream(name)).partitions
        except StreamNotFoundError:
            return None


def _ready_workers(gitops: GitOps) -> int:
    pods = gitops.cluster.get_json("pods", f"--namespace={WORKLOADS_NAMESPACE}", "-l", WORKER_SELECTOR)["items"]
    return sum(
        1
        for pod in pods
        if not pod["metadata"].get("deletionTimestamp")
        and any(
            entry["type"] == "Ready" and entry["status"] == "True"
            for entry in (pod.get("status") or {}).get("conditions", [])
        )
    )


def _health_is(expected: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: health(status) == expected


def test_a_first_sync_from_an_empty_cluster_reaches_healthy(gitops: GitOps) -> None:
    cluster = gitops.cluster
    crds = cluster.kubectl("get", "crd", "-o", "name")
    assert "sluice.dev" not in crds, "the cluster starts without Sluice"
    image_repository, image_tag = cluster.image.rsplit(":", 1)
    platform = application(
        PLATFORM_APPLICATION_FILE,
        repository_url=gitops.repository.url,
        helm_values={
            "image": {"repository": image_repository, "tag": image_tag, "pullPolicy": "Never"},
            "operator": {"resyncSeconds": 2},
        },
    )
    workloads = application(WORKLOADS_APPLICATION_FILE, repository_url=gitops.repository.url)
    history = HealthHistory()
    with timed(gitops, "first sync from an empty cluster to Healthy (both Applications)"):
        cluster.apply([platform, workloads], namespace=ARGOCD_NAMESPACE)
        wait_for_application(gitops, PLATFORM, healthy_and_synced, "Healthy and Synced", timeout_seconds=300)
        status = wait_for_application(
            gitops,
            WORKLOADS,
            healthy_and_synced,
            "Healthy and Synced",
            timeout_seconds=300,
            interval=0.3,
            observe=history.observe,
        )
    # Healthy only once every Sluice object is Ready (a Replay: Succeeded).
    readiness = object_readiness(cluster, WORKLOADS_NAMESPACE)
    assert readiness
    assert all(value == "True" for value in readiness.values()), readiness
    print(f"workloads health as polled: {history.application}; per resource: {history.resources}")
    operation = status.get("operationState") or {}
    print(
        f"workloads sync: {operation.get('phase')}, retries {operation.get('retryCount', 0)}: "
        f"{operation.get('message')}"
    )
    # Whether a poll catches the workloads app Progressing here depends on how fast the first sync goes (the
    # platform app is waited for first), and the example's Replay finds an empty stream and may finish between
    # two polls: test_a_replay_added_in_git_is_progressing_while_it_runs asserts Progressing on a Replay that
    # runs long enough to be seen. An EventStream's schema is usually provisioned within one refresh.
    assert history.application[-1] == "Healthy"
    assert all(value == "Healthy" for value in resource_health(status).values() if value is not None)

    # The platform came first: every CRD existed before any custom resource.
    crd_created = max(
        _parse_time(cluster.get_json("crd", name)["metadata"]["creationTimestamp"]) for name in SLUICE_CRDS
    )
    stream = _sluice_object(gitops, "EventStream", STREAM)
    group = _sluice_object(gitops, "ConsumerGroup", CONSUMER_GROUP)
    replay = _sluice_object(gitops, "Replay", REPLAY)
    assert crd_created <= _parse_time(stream["metadata"]["creationTimestamp"])
    # Sync waves: the group only once the stream was Ready (wave 0 Healthy), the Replay after the group.
    stream_ready_at = _parse_time(_condition(stream, "Ready")["lastTransitionTime"])
    group_created_at = _parse_time(group["metadata"]["creationTimestamp"])
    assert group_created_at >= stream_ready_at
    assert _parse_time(replay["metadata"]["creationTimestamp"]) >= group_created_at
    assert group["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "1"


def test_status_updates_and_autoscaled_replicas_leave_the_app_synced(gitops: GitOps) -> None:
    cluster = gitops.cluster
    before = wait_for_application(gitops, WORKLOADS, healthy_and_synced, "Healthy and Synced")
    operation_started = (before.get("operationState") or {}).get("startedAt")
    group_before = _sluice_object(gitops, "ConsumerGroup", CONSUMER_GROUP)
    asyncio.run(append_sample_orders(cluster.postgres.dsn(), stream=STREAM, count=300))
    # What an HPA or KEDA does through /scale.
    cluster.kubectl(
        "scale", "consumergroup.sluice.dev", CONSUMER_GROUP, f"--namespace={WORKLOADS_NAMESPACE}", "--replicas=3"
    )
    wait_for(lambda: _ready_workers(gitops) == 3, "3 Ready workers after kubectl scale", timeout_seconds=120)
    gitops.refresh(WORKLOADS)
    watched_until = time.monotonic() + QUIET_PERIOD_SECONDS
    sync_states: set[str | None] = set()
    while time.monotonic() < watched_until:
        status = gitops.application(WORKLOADS).get("status") or {}
        sync_states.add(sync_status(status))
        time.sleep(0.5)
    status = gitops.application(WORKLOADS).get("status") or {}
    assert sync_states == {"Synced"}, f"{sync_states}\n{gitops.diagnostics(WORKLOADS)}"
    assert (status.get("operationState") or {}).get("startedAt") == operation_started, "no sync ran (no self-heal)"
    group_after = _sluice_object(gitops, "ConsumerGroup", CONSUMER_GROUP)
    assert group_after["spec"]["replicas"] == 3, "the autoscaler's replicas stay"
    assert group_after["status"] != group_before["status"], "the status (lag, positions) changed meanwhile"
    print(f"status changed and replicas 2 -> 3; the app stayed Synced for {QUIET_PERIOD_SECONDS:.0f} s")


def test_the_app_is_degraded_while_the_database_is_down_and_healthy_after(gitops: GitOps) -> None:
    cluster = gitops.cluster
    wait_for_application(gitops, WORKLOADS, healthy_and_synced, "Healthy and Synced")
    try:
        with timed(gitops, "Healthy -> Degraded (PostgreSQL killed)"):
            cluster.postgres.kill()
            # The objects turn Degraded one by one as their next status update finds the database down (the app
            # with the first of them): wait for the stream's too.
            status = wait_for_application(
                gitops,
                WORKLOADS,
                lambda status: (
                    health(status) == "Degraded" and resource_health(status).get(f"EventStream/{STREAM}") == "Degraded"
                ),
                "Degraded, the EventStream too",
                timeout_seconds=120,
            )
        degraded = {name: value for name, value in resource_health(status).items() if value == "Degraded"}
        print(f"Degraded while PostgreSQL is down: {sorted(degraded)}")
        assert f"EventStream/{STREAM}" in degraded
        messages = [
            (resource.get("health") or {}).get("message", "")
            for resource in status.get("resources") or []
            if resource["kind"] == "EventStream"
        ]
        print(f"what Argo CD shows for the EventStream: {messages}")
    finally:
        with timed(gitops, "Degraded -> Healthy (PostgreSQL restarted)"):
            cluster.postgres.restart()
            wait_for_application(gitops, WORKLOADS, healthy_and_synced, "Healthy and Synced", timeout_seconds=180)
    assert sync_status(gitops.application(WORKLOADS).get("status") or {}) == "Synced"


def test_an_invalid_spec_committed_to_git_is_degraded_until_fixed(gitops: GitOps) -> None:
    repository = gitops.repository
    group = load_yaml(repository.checkout / CONSUMER_GROUP_FILE)
    group["metadata"]["name"] = INVALID_GROUP
    group["spec"]["streamRef"]["name"] = "order"  # a typo: no such EventStream (the API server cannot know)
    group["spec"]["replicas"] = 1
    with timed(gitops, "invalid spec committed -> Degraded"):
        repository.write({INVALID_GROUP_FILE: yaml.safe_dump(group, sort_keys=False)})
        repository.commit("audit-notifications: stream 'order' (a typo)")
        gitops.refresh(WORKLOADS)
        status = wait_for_application(gitops, WORKLOADS, _health_is("Degraded"), "Degraded", timeout_seconds=120)
    resource = next(entry for entry in status["resources"] if entry["name"] == INVALID_GROUP)
    print(f"what Argo CD shows for the ConsumerGroup: {resource.get('health')}")
    assert (resource.get("health") or {}).get("status") == "Degraded"
    assert "not found" in (resource.get("health") or {}).get("message", "")
    with timed(gitops, "fix committed -> Healthy"):
        repository.remove(INVALID_GROUP_FILE)
        repository.commit("audit-notifications removed")
        gitops.refresh(WORKLOADS)
        wait_for_application(
            gitops,
            WORKLOADS,
            lambda status: healthy_and_synced(status) and INVALID_GROUP not in str(status.get("resources")),
            "Healthy and Synced without the invalid group",
            timeout_seconds=180,
        )
    assert not gitops.cluster.kubectl(
        "get", "consumergroup.sluice.dev", INVALID_GROUP, f"--namespace={WORKLOADS_NAMESPACE}", "--ignore-not-found"
    ).strip(), "pruned"


def test_a_stream_added_in_git_is_progressing_until_its_schema_is_ready(gitops: GitOps) -> None:
    stream = load_yaml(gitops.repository.checkout / f"{EXAMPLE_PATH}/10-orders-stream.yaml")
    scratch = with_sync_wave(
        {
            "apiVersion": stream["apiVersion"],
            "kind": "EventStream",
            "metadata": {"name": SCRATCH_STREAM},
            "spec": {
                "type": "persistent",
                "partitions": 1,
                "deletionPolicy": "delete",
                "database": stream["spec"]["database"],
            },
        }
    )
    history = HealthHistory()
    with timed(gitops, "new EventStream committed -> Healthy"):
        gitops.repository.write({SCRATCH_STREAM_FILE: yaml.safe_dump(scratch, sort_keys=False)})
        gitops.repository.commit("a scratch stream whose data goes with it")
        gitops.refresh(WORKLOADS)
        wait_for_application(
            gitops,
            WORKLOADS,
            lambda status: f"EventStream/{SCRATCH_STREAM}" in resource_health(status) and healthy_and_synced(status),
            "Healthy and Synced with the new stream",
            timeout_seconds=120,
            interval=0.2,
            observe=history.observe,
        )
    print(f"EventStream/{SCRATCH_STREAM} health as polled: {history.resources.get(f'EventStream/{SCRATCH_STREAM}')}")
    assert _condition(_sluice_object(gitops, "EventStream", SCRATCH_STREAM), "Ready")["status"] == "True"
    assert asyncio.run(_stored_partitions(gitops.cluster.postgres.dsn(), SCRATCH_STREAM)) == 1


def test_a_replay_added_in_git_is_progressing_while_it_runs(gitops: GitOps) -> None:
    cluster = gitops.cluster
    asyncio.run(append_sample_orders(cluster.postgres.dsn(), stream=STREAM, count=REPLAYED_BACKLOG))
    replay = load_yaml(gitops.repository.checkout / REPLAY_FILE)
    replay["metadata"] = {"name": SLOW_REPLAY, "annotations": replay["metadata"].get("annotations", {})}
    replay["spec"]["rateLimit"] = SLOW_REPLAY_RATE  # seconds of work: long enough for the polls to see it run
    history = HealthHistory()
    with timed(gitops, "Replay committed -> Progressing -> Healthy (Succeeded)"):
        gitops.repository.write({SLOW_REPLAY_FILE: yaml.safe_dump(replay, sort_keys=False)})
        gitops.repository.commit("replay the orders again, slowly")
        gitops.refresh(WORKLOADS)
        wait_for_application(
            gitops,
            WORKLOADS,
            lambda status: (
                history.resources.get(f"Replay/{SLOW_REPLAY}", [])[-1:] == ["Healthy"] and healthy_and_synced(status)
            ),
            "Healthy and Synced with the replay Succeeded",
            timeout_seconds=240,
            interval=0.3,
            observe=history.observe,
        )
    print(f"Replay/{SLOW_REPLAY} health as polled: {history.resources[f'Replay/{SLOW_REPLAY}']}")
    assert "Progressing" in history.resources[f"Replay/{SLOW_REPLAY}"], history.resources
    assert "Progressing" in history.application, history.application
    assert _condition(_sluice_object(gitops, "Replay", SLOW_REPLAY), "Succeeded")["status"] == "True"


def _namespace_phase(gitops: GitOps, name: str) -> str | None:
    found = gitops.cluster.kubectl("get", "namespace", name, "--ignore-not-found", "-o", "jsonpath={.status.phase}")
    return found.strip() or None


def test_deleting_the_apps_honours_deletion_policy_and_leaves_no_namespace_terminating(gitops: GitOps) -> None:
    cluster = gitops.cluster
    dsn = cluster.postgres.dsn()
    assert asyncio.run(_stored_partitions(dsn, STREAM)) == 4
    assert asyncio.run(_stored_partitions(dsn, SCRATCH_STREAM)) == 1
    with timed(gitops, "cascading delete of the workloads Application"):
        cluster.kubectl(
            "delete", "application.argoproj.io", WORKLOADS, f"--namespace={ARGOCD_NAMESPACE}", "--wait=false"
        )
        wait_for(
            lambda: not gitops.application_exists(WORKLOADS),
            "the workloads Application gone",
            timeout_seconds=180,
        )
    left = object_readiness(cluster, WORKLOADS_NAMESPACE)
    assert not left, f"Sluice objects left after the cascading delete: {left}"
    assert asyncio.run(_stored_partitions(dsn, STREAM)) == 4, "deletionPolicy retain: the data stays"
    assert asyncio.run(_stored_partitions(dsn, SCRATCH_STREAM)) is None, "deletionPolicy delete: the data goes"

    with timed(gitops, "cascading delete of the platform Application"):
        cluster.kubectl(
            "delete", "application.argoproj.io", PLATFORM, f"--namespace={ARGOCD_NAMESPACE}", "--wait=false"
        )
        wait_for(lambda: not gitops.application_exists(PLATFORM), "the platform Application gone", timeout_seconds=180)
    deployments = cluster.get_json("deployments", f"--namespace={PLATFORM_NAMESPACE}")["items"]
    assert not deployments, [item["metadata"]["name"] for item in deployments]
    for name in SLUICE_CRDS:  # helm.sh/resource-policy: keep, which Argo CD honours
        cluster.get_json("crd", name)

    with timed(gitops, "namespaces shop and sluice-system deleted"):
        cluster.kubectl("delete", "namespace", WORKLOADS_NAMESPACE, PLATFORM_NAMESPACE, "--wait=false")
        try:
            wait_for(
                lambda: (
                    _namespace_phase(gitops, WORKLOADS_NAMESPACE) is None
                    and _namespace_phase(gitops, PLATFORM_NAMESPACE) is None
                ),
                "both namespaces gone",
                timeout_seconds=90,
            )
        except AssertionError as error:
            phases = {name: _namespace_phase(gitops, name) for name in (WORKLOADS_NAMESPACE, PLATFORM_NAMESPACE)}
            raise AssertionError(f"{error}: {phases}") from None
    terminating = cluster.kubectl("get", "namespaces", "-o", "jsonpath={.items[?(@.status.phase=='Terminating')]}")
    assert not terminating.strip(), terminating
