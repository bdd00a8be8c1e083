"""What the Argo CD tests share: the Git repository's content, the Application manifests of deploy/argocd/ as
the tests apply them, and waits on an Application's health and sync status with diagnostics.

The repository holds a copy of charts/sluice and of examples/end-to-end/ from the working tree. The example is
written with the two substitutions `./dev demo` makes (the database Secret's URI: PostgreSQL on the node's
bridge; the ConsumerGroup's sink URL: the test's sink) and each object's ``argocd.argoproj.io/sync-wave``
annotation from ``SYNC_WAVES`` (the table in docs/argocd.md, which a test compares with it).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice_devkit.argocd import ARGOCD_NAMESPACE, LocalArgoCD
from sluice_devkit.demo_sink import CloudEventSink
from sluice_devkit.end_to_end_example import DEFAULT_EXAMPLE_DIRECTORY, ExampleManifests
from sluice_devkit.git_repository import LocalGitRepository
from tests.real_node.node_cluster import REPOSITORY_ROOT, RealCluster

ARGOCD_DIRECTORY = REPOSITORY_ROOT / "deploy" / "argocd"
PLATFORM_APPLICATION_FILE = ARGOCD_DIRECTORY / "platform-application.yaml"
WORKLOADS_APPLICATION_FILE = ARGOCD_DIRECTORY / "workloads-application.yaml"
ARGOCD_CM_PATCH = ARGOCD_DIRECTORY / "argocd-cm.yaml"
CHART_DIRECTORY = REPOSITORY_ROOT / "charts" / "sluice"
EXAMPLE_PATH = "examples/end-to-end"
SLUICE_KINDS = ("EventStream", "ConsumerGroup", "Projection", "RetentionPolicy", "Replay")

SYNC_WAVES: dict[str, int] = {
    "Secret": -1,
    "EventStream": 0,
    "RetentionPolicy": 0,
    "ConsumerGroup": 1,
    "Projection": 1,
    "Replay": 2,
}
"""The sync wave of each kind of the workloads Application (docs/argocd.md, "Sync waves")."""


def load_yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} holds one object"
    return document


def with_sync_wave(manifest: dict[str, Any]) -> dict[str, Any]:
    annotated = copy.deepcopy(manifest)
    wave = SYNC_WAVES[annotated["kind"]]
    annotated["metadata"].setdefault("annotations", {})["argocd.argoproj.io/sync-wave"] = str(wave)
    return annotated


def example_files(*, database_url: str, sink_url: str) -> dict[str, str]:
    """examples/end-to-end as the repository holds it: relative path → YAML text, one file per original file."""
    files: dict[str, str] = {}
    for path in sorted(DEFAULT_EXAMPLE_DIRECTORY.glob("*.yaml")):
        documents = [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]
        adapted = ExampleManifests(manifests=documents, files=[path]).for_local_platform(
            database_url=database_url, sink_url=sink_url
        )
        text = "---\n".join(yaml.safe_dump(with_sync_wave(manifest), sort_keys=False) for manifest in adapted)
        files[f"{EXAMPLE_PATH}/{path.name}"] = text
    return files


def application(path: Path, *, repository_url: str, helm_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Application of deploy/argocd/ as written, with the test's repository URL (and chart values)."""
    manifest = load_yaml(path)
    manifest["spec"]["source"]["repoURL"] = repository_url
    if helm_values is not None:
        manifest["spec"]["source"].setdefault("helm", {})["valuesObject"] = helm_values
    return manifest


@dataclass
class GitOps:
    """The module's cluster, Argo CD, the Git repository Argo CD syncs from, and the example's sink."""

    cluster: RealCluster
    argocd: LocalArgoCD
    repository: LocalGitRepository
    sink: CloudEventSink
    timings: dict[str, float] = field(default_factory=dict)

    def application(self, name: str) -> dict[str, Any]:
        return self.cluster.get_json("application.argoproj.io", name, f"--namespace={ARGOCD_NAMESPACE}")

    def application_exists(self, name: str) -> bool:
        found = self.cluster.kubectl(
            "get",
            "application.argoproj.io",
            name,
            f"--namespace={ARGOCD_NAMESPACE}",
            "--ignore-not-found",
            "-o",
            "name",
        )
        return bool(found.strip())

    def refresh(self, name: str) -> None:
        """Ask Argo CD to compare the Application with Git now (what `argocd app get --refresh` does)."""
        self.cluster.kubectl(
            "annotate",
            "application.argoproj.io",
            name,
            f"--namespace={ARGOCD_NAMESPACE}",
            "argocd.argoproj.io/refresh=normal",
            "--overwrite",
        )

    def diagnostics(self, name: str) -> str:
        """An Application's status (health, sync, conditions, operation, resources) and the controller log tail."""
        try:
            status = self.application(name).get("status") or {}
        except AssertionError as error:
            status = {"error": str(error)}
        summary = {
            "health": status.get("health"),
            "sync": status.get("sync"),
            "conditions": status.get("conditions"),
            "operationState": {
                key: (status.get("operationState") or {}).get(key) for key in ("phase", "message", "retryCount")
            },
            "resources": [
                f"{resource.get('kind')}/{resource.get('name')}: {resource.get('status')}, "
                f"{(resource.get('health') or {}).get('status')} {(resource.get('health') or {}).get('message', '')}"
                for resource in status.get("resources") or []
            ],
        }
        return (
            f"Application {name}: {json.dumps(summary, indent=2)}\n"
            f"argocd-application-controller log tail:\n{self.argocd.log_tail(line_count=30)}"
        )


def health(status: dict[str, Any]) -> str | None:
    value = (status.get("health") or {}).get("status")
    return None if value is None else str(value)


def sync_status(status: dict[str, Any]) -> str | None:
    value = (status.get("sync") or {}).get("status")
    return None if value is None else str(value)


def resource_health(status: dict[str, Any]) -> dict[str, str | None]:
    """``Kind/name`` → health of each resource of the Application (None: no health check)."""
    return {
        f"{resource['kind']}/{resource['name']}": (resource.get("health") or {}).get("status")
        for resource in status.get("resources") or []
    }


def wait_for_application(
    gitops: GitOps,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    description: str,
    *,
    timeout_seconds: float = 180.0,
    interval: float = 0.5,
    observe: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll the Application's status until ``predicate`` holds; AssertionError with diagnostics on timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        status = gitops.application(name).get("status") or {}
        if observe is not None:
            observe(status)
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_seconds:.0f} s waiting for {name} to be {description}\n"
                f"{gitops.diagnostics(name)}"
            )
        time.sleep(interval)


def healthy_and_synced(status: dict[str, Any]) -> bool:
    return health(status) == "Healthy" and sync_status(status) == "Synced"


@contextmanager
def timed(gitops: GitOps, label: str) -> Iterator[None]:
    """Measure a block; prints ``<label>: <seconds> s`` (pytest -s shows it) and keeps it in gitops.timings."""
    started_at = time.monotonic()
    yield
    elapsed = time.monotonic() - started_at
    gitops.timings[label] = elapsed
    print(f"\n[argocd timing] {label}: {elapsed:.1f} s")


def object_readiness(cluster: RealCluster, namespace: str) -> dict[str, str | None]:
    """``Kind/name`` → status of the Ready condition (Succeeded for a Replay) of every Sluice object."""
    readiness: dict[str, str | None] = {}
    for kind in SLUICE_KINDS:
        items = cluster.get_json(f"{kind.lower()}.sluice.dev", f"--namespace={namespace}")["items"]
        for body in items:
            wanted = "Succeeded" if kind == "Replay" else "Ready"
            conditions = (body.get("status") or {}).get("conditions") or []
            readiness[f"{kind}/{body['metadata']['name']}"] = next(
                (str(entry.get("status")) for entry in conditions if entry.get("type") == wanted), None
            )
    return readiness
