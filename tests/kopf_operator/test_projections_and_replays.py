"""Projection and Replay through the running operator, with their pods' commands run as local processes.

The test control plane has no kubelet, so each test runs the container the operator specified (its exact
arguments and environment) as a local process against the same PostgreSQL, then reports the pod as a
kubelet would. The operator must then show the runtime's own figures in status: a projection's position and
lag, a replay's progress, and Ready once the work is done.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import sluice
from sluice import EventData
from tests.custom_resources.cluster import KubernetesCluster, wait_until
from tests.custom_resources.manifests import REPOSITORY_ROOT
from tests.kopf_operator.conftest import DATABASE_SECRET
from tests.kopf_operator.helpers import condition_status, reconciled_with, wait_for_object
from tests.kopf_operator.operator_process import OperatorProcess, free_port
from tests.kopf_operator.workloads import (
    get_deployment,
    mark_pods_ready,
    mark_pods_succeeded,
    pod_process_environment,
)

pytestmark = [pytest.mark.kubernetes, pytest.mark.postgres, pytest.mark.slow]

SLUICE_COMMAND = REPOSITORY_ROOT / ".venv" / "bin" / "sluice"
DATABASE = {"secretRef": {"name": DATABASE_SECRET}}


def manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "sluice.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def order_summary_projection() -> dict[str, Any]:
    upsert = {
        "eventType": "OrderPlaced",
        "columns": {"order_id": "$.order_id", "total": "$.total", "status": "$.status"},
    }
    target = {
        "sql": {
            "table": "operator_order_summary",
            "keyColumns": ["order_id"],
            "columnTypes": {"total": "bigint", "status": "text"},
            "upserts": [upsert],
        }
    }
    return manifest("Projection", "order-summary", {"sources": ["shop-orders"], "target": target, "batchSize": 10})


def start_container(
    cluster: KubernetesCluster, namespace: str, container: dict[str, Any], log_path: Path
) -> subprocess.Popen[bytes]:
    """The container's command as a local process; SLUICE_HTTP_PORT added because local processes share one
    network namespace."""
    assert container["command"] == ["sluice"]
    environment = {
        **os.environ,
        **pod_process_environment(cluster, namespace, container, pod_name="local-pod"),
        "SLUICE_HTTP_PORT": str(free_port()),
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(SLUICE_COMMAND), *container["args"]], env=environment, stdout=log, stderr=subprocess.STDOUT
        )


async def summary_rows(dsn: str) -> list[tuple[str, str]]:
    connection = await asyncpg.connect(dsn)
    try:
        if await connection.fetchval("SELECT to_regclass('public.operator_order_summary')") is None:
            return []
        rows = await connection.fetch("SELECT order_id, status FROM public.operator_order_summary ORDER BY order_id")
    finally:
        await connection.close()
    return [(str(row["order_id"]), str(row["status"])) for row in rows]


async def test_the_projection_pod_command_fills_its_table_and_status_shows_position_and_lag(
    kubernetes_cluster: KubernetesCluster,
    operator_namespace: str,
    running_operator: OperatorProcess,
    postgres_dsn: str,
    tmp_path: Path,
) -> None:
    namespace = operator_namespace
    kubernetes_cluster.create(namespace, manifest("EventStream", "shop-orders", {"database": DATABASE}))
    wait_for_object(kubernetes_cluster, namespace, "EventStream", "shop-orders", reconciled_with("Ready", "True"))
    async with await sluice.connect(postgres_dsn) as store:
        await store.append(
            "shop-orders",
            [
                *(
                    EventData("OrderPlaced", {"order_id": f"o-{n:02}", "total": n, "status": "placed"})
                    for n in range(25)
                ),
                EventData("OrderPlaced", {"order_id": "o-bad", "total": "lots", "status": "placed"}),  # dead letter
            ],
        )
    kubernetes_cluster.create(namespace, order_summary_projection())
    deployment = wait_until(
        lambda: get_deployment(kubernetes_cluster, namespace, "order-summary"),
        lambda found: found is not None,
        timeout_seconds=40,
    )
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["project", "--name", "order-summary"]

    process = start_container(kubernetes_cluster, namespace, container, tmp_path / "project.log")
    try:
        deadline = time.monotonic() + 60
        while len(await summary_rows(postgres_dsn)) < 25 and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "project.log").read_text()
            await asyncio.sleep(0.3)
        rows = await summary_rows(postgres_dsn)
        assert rows == [(f"o-{n:02}", "placed") for n in range(25)], (tmp_path / "project.log").read_text()
        selector = ",".join(f"{key}={value}" for key, value in deployment["spec"]["selector"]["matchLabels"].items())
        assert mark_pods_ready(kubernetes_cluster, namespace, selector) == 1
        projection = wait_for_object(
            kubernetes_cluster,
            namespace,
            "Projection",
            "order-summary",
            lambda body: (
                condition_status(body, "Ready") == "True"
                and ((body.get("status") or {}).get("lag") or {}).get("events") == 0
            ),
        )
        assert projection["status"]["position"]
        assert projection["status"]["deadLetters"] == 1  # "lots" is no bigint: recorded, counted, passed
        assert projection["status"]["observedGeneration"] == projection["metadata"]["generation"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "project.log").read_text()

    # With its process stopped the projection falls behind, and the status says by how much.
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("shop-orders", [EventData("OrderPlaced", {"order_id": "o-99", "total": 1, "status": "x"})])
    wait_for_object(
        kubernetes_cluster,
        namespace,
        "Projection",
        "order-summary",
        lambda body: ((body.get("status") or {}).get("lag") or {}).get("events") == 1,
    )


async def test_the_replay_job_command_copies_the_stream_and_the_replay_succeeds(
    kubernetes_cluster: KubernetesCluster,
    operator_namespace: str,
    running_operator: OperatorProcess,
    postgres_dsn: str,
    tmp_path: Path,
) -> None:
    namespace = operator_namespace
    for name in ("ledger", "ledger-copy"):
        kubernetes_cluster.create(namespace, manifest("EventStream", name, {"database": DATABASE}))
        wait_for_object(kubernetes_cluster, namespace, "EventStream", name, reconciled_with("Ready", "True"))
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("ledger", [EventData("Posted", {"n": n}) for n in range(40)])
    replay_spec = {"source": {"stream": "ledger"}, "fromOffset": 10, "target": {"stream": "ledger-copy"}}
    kubernetes_cluster.create(namespace, manifest("Replay", "ledger-backfill", replay_spec | {"batchSize": 7}))
    replay = wait_for_object(
        kubernetes_cluster, namespace, "Replay", "ledger-backfill", lambda body: (body.get("status") or {}).get("phase")
    )
    assert replay["status"]["phase"] == "Pending"
    job = json.loads(
        kubernetes_cluster.kubectl("get", "job", "ledger-backfill", "-o", "json", namespace=namespace).stdout
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["replay", "--name"]

    process = start_container(kubernetes_cluster, namespace, container, tmp_path / "replay.log")
    assert process.wait(timeout=60) == 0, (tmp_path / "replay.log").read_text()
    async with await sluice.connect(postgres_dsn) as store:
        copied = [event.data["n"] async for event in store.read_stream("ledger-copy")]
    assert copied == list(range(10, 40))

    replay = wait_for_object(
        kubernetes_cluster,
        namespace,
        "Replay",
        "ledger-backfill",
        lambda body: ((body.get("status") or {}).get("progress") or {}).get("percent") == 100,
    )
    assert replay["status"]["progress"] == {"eventsDone": 30, "eventsTotal": 30, "percent": 100}
    selector = ",".join(f"{key}={value}" for key, value in job["spec"]["selector"]["matchLabels"].items())
    assert mark_pods_succeeded(kubernetes_cluster, namespace, selector) == 1
    replay = wait_for_object(
        kubernetes_cluster, namespace, "Replay", "ledger-backfill", reconciled_with("Ready", "True"), timeout_seconds=60
    )
    assert replay["status"]["phase"] == "Succeeded"
    assert condition_status(replay, "Succeeded") == "True"
