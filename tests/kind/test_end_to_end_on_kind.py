"""The end-to-end example on a real kind cluster with real pods (opt-in: ``pytest tests/kind --kind-e2e``).

What runs: ``docker build`` of the repository's Dockerfile, the image loaded into kind, PostgreSQL as a pod,
the Helm chart installed (operator, CRDs, RBAC), the end-to-end example applied, events appended by a Job
running ``sluice append`` in the same image, and the ConsumerGroup's pods (``sluice consume``) draining the
lag to zero. Needs Docker, and network access for kind's node image and PostgreSQL's image; nothing here
runs on the CI machines, which have no Docker engine (the tests are deselected there, never skipped).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from pytest_kind import KindCluster

pytestmark = [pytest.mark.kind, pytest.mark.slow, pytest.mark.timeout(1800)]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY_ROOT / "examples" / "end-to-end"
IMAGE_REPOSITORY = "sluice"
IMAGE_TAG = "kind-e2e"
NAMESPACE = "sluice-e2e"
POSTGRES_MANIFEST = Path(__file__).with_name("postgres.yaml")
DATABASE_URL = "postgresql://sluice:sluice@postgres.sluice-e2e.svc:5432/sluice"


def wait_for(check: Callable[[], Any], *, timeout_seconds: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_seconds} s waiting for {what}")
        time.sleep(3)


def resource(cluster: KindCluster, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json")))


def condition(body: dict[str, Any], condition_type: str) -> str | None:
    for entry in body.get("status", {}).get("conditions", []):
        if entry["type"] == condition_type:
            return str(entry["status"])
    return None


def example_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        documents.extend(document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document)
    for document in documents:
        document.setdefault("metadata", {})["namespace"] = NAMESPACE
        if document["kind"] == "Secret":
            # The example's database Secret, pointed at the PostgreSQL pod of this test.
            document["stringData"] = {"uri": DATABASE_URL}
            document.pop("data", None)
    return documents


@pytest.fixture(scope="module")
def cluster_with_sluice(kind_cluster: KindCluster, tmp_path_factory: pytest.TempPathFactory) -> KindCluster:
    docker = shutil.which("docker")
    helm = shutil.which("helm") or str(next((REPOSITORY_ROOT / ".cache" / "control-plane").glob("*/bin/helm")))
    assert docker, "the kind suite needs Docker"
    image = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
    subprocess.run([docker, "build", "--tag", image, str(REPOSITORY_ROOT)], check=True)
    kind_cluster.load_docker_image(image)
    kind_cluster.kubectl("create", "namespace", NAMESPACE)
    kind_cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(POSTGRES_MANIFEST))
    kind_cluster.kubectl("rollout", "status", "deployment/postgres", "-n", NAMESPACE, "--timeout=300s")
    work = tmp_path_factory.mktemp("kind")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sluice-default-database", "namespace": NAMESPACE},
        "stringData": {"uri": DATABASE_URL},
    }
    (work / "secret.yaml").write_text(yaml.safe_dump(secret), encoding="utf-8")
    kind_cluster.kubectl("apply", "-f", str(work / "secret.yaml"))
    subprocess.run(
        [helm, "install", "sluice", str(REPOSITORY_ROOT / "charts" / "sluice"), "--namespace", NAMESPACE,
         "--kubeconfig", str(kind_cluster.kubeconfig_path), "--wait", "--timeout", "300s",
         "--set", f"image.repository={IMAGE_REPOSITORY}", "--set", f"image.tag={IMAGE_TAG}",
         "--set", "image.pullPolicy=Never", "--set", "database.secretName=sluice-default-database"],
        check=True,
    )  # fmt: skip
    manifest = work / "example.yaml"
    manifest.write_text(yaml.safe_dump_all(example_documents()), encoding="utf-8")
    kind_cluster.kubectl("apply", "--server-side", "-f", str(manifest))
    return kind_cluster


def test_streams_and_groups_become_ready_with_real_pods(cluster_with_sluice: KindCluster) -> None:
    documents = example_documents()
    for kind in ("EventStream", "ConsumerGroup"):
        for document in (document for document in documents if document["kind"] == kind):
            name = document["metadata"]["name"]
            wait_for(
                lambda kind=kind, name=name: condition(resource(cluster_with_sluice, kind, name), "Ready") == "True",
                timeout_seconds=600,
                what=f"{kind} {name} to be Ready",
            )


def test_appended_events_are_consumed_until_lag_is_zero(cluster_with_sluice: KindCluster) -> None:
    documents = example_documents()
    group = next(document for document in documents if document["kind"] == "ConsumerGroup")
    event_stream = next(
        document
        for document in documents
        if document["kind"] == "EventStream" and document["metadata"]["name"] == group["spec"]["streamRef"]["name"]
    )
    stream = event_stream["spec"].get("streamName") or event_stream["metadata"]["name"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "append-sample-events", "namespace": NAMESPACE},
        "spec": {
            "backoffLimit": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "append",
                            "image": f"{IMAGE_REPOSITORY}:{IMAGE_TAG}",
                            "imagePullPolicy": "Never",
                            "command": ["sh", "-c"],
                            "args": [
                                'for i in $(seq 1 100); do echo "{\\"order\\": $i}"; done'
                                f" | sluice append {stream} --type OrderPlaced"
                            ],
                            "env": [{"name": "SLUICE_DSN", "value": DATABASE_URL}],
                        }
                    ],
                }
            },
        },
    }
    path = Path(cluster_with_sluice.kubeconfig_path).with_name("append-job.yaml")
    path.write_text(yaml.safe_dump(job), encoding="utf-8")
    cluster_with_sluice.kubectl("apply", "-f", str(path))
    cluster_with_sluice.kubectl(
        "wait", "--for=condition=complete", "job/append-sample-events", "-n", NAMESPACE, "--timeout=300s"
    )
    name = group["metadata"]["name"]

    def lag_is_zero_after_consuming() -> bool:
        status = resource(cluster_with_sluice, "ConsumerGroup", name).get("status", {})
        positions = status.get("positions") or []
        committed = sum(int(position.get("committed", 0)) for position in positions)
        return status.get("lag", {}).get("events") == 0 and committed >= 100

    wait_for(lag_is_zero_after_consuming, timeout_seconds=600, what=f"ConsumerGroup {name} to consume everything")
