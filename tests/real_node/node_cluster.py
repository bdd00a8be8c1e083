"""A real one-node cluster for the end-to-end tests: PostgreSQL, the control plane and a node, with the
Sluice image imported; and small helpers to wait on it.

Starting order matters (``sluice_devkit.local_node``): the node's bridge first, then PostgreSQL and
the API server listening on its gateway too (pods reach them there), then the node.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings
from sluice_devkit.control_plane import LocalControlPlane, build_control_plane_binaries
from sluice_devkit.local_node import LocalNode, node_unsupported_reason

__all__ = [
    "OPERATOR_NAMESPACE",
    "REPOSITORY_ROOT",
    "RealCluster",
    "build_node_binaries",
    "build_sluice_image",
    "install_chart",
    "node_binaries_or_reason",
    "start_real_cluster",
    "wait_for",
]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CONTROL_PLANE_BUILD = REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh"
NODE_BUILD = REPOSITORY_ROOT / "scripts" / "node" / "build.sh"
IMAGE_BUILD = REPOSITORY_ROOT / "scripts" / "image" / "build.sh"
T = TypeVar("T")


def _last_lines(command: list[str], count: int) -> list[str]:
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, cwd=REPOSITORY_ROOT)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or len(lines) < count:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {completed.returncode}")
    return lines[-count:]


def build_node_binaries() -> Path:
    """scripts/node/build.sh (instant once built): the folder of runc, containerd, the CNI plugins, pause."""
    return Path(_last_lines(["bash", str(NODE_BUILD)], 1)[0])


def build_sluice_image() -> tuple[Path, str]:
    """scripts/image/build.sh (cached by the hash of its inputs): the OCI archive and the image reference."""
    archive, reference = _last_lines(["bash", str(IMAGE_BUILD)], 2)
    return Path(archive), reference


def node_binaries_or_reason() -> tuple[Path, Path] | str:
    """(Kubernetes bin, node bin) folders, or why no real node can run on this machine."""
    reason = node_unsupported_reason()
    if reason is not None:
        return reason
    return build_control_plane_binaries(CONTROL_PLANE_BUILD), build_node_binaries()


@dataclass
class RealCluster:
    """What the session's real node runs on: PostgreSQL, the control plane, the node, the image."""

    postgres: EmbeddedPostgres
    control_plane: LocalControlPlane
    node: LocalNode
    image: str = ""

    @property
    def pod_database_url(self) -> str:
        """PostgreSQL's URL as pods see it: the bridge gateway, same port."""
        return f"postgresql://{self.postgres.settings.database_user}@{self.node.gateway}:{self.postgres.port}/postgres"

    def kubectl(self, *arguments: str, stdin: str | None = None, check: bool = True) -> str:
        completed = subprocess.run(
            [
                str(self.node.layout.kubernetes_bin_directory / "kubectl"),
                f"--kubeconfig={self.control_plane.kubeconfig_path}",
                *arguments,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and completed.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(arguments)} failed: {completed.stderr.strip()}")
        return completed.stdout

    def get_json(self, *arguments: str) -> dict[str, Any]:
        value = json.loads(self.kubectl("get", *arguments, "-o", "json"))
        assert isinstance(value, dict)
        return value

    def apply(self, manifests: list[dict[str, Any]], *, namespace: str) -> None:
        document = {"apiVersion": "v1", "kind": "List", "items": manifests}
        self.kubectl("apply", f"--namespace={namespace}", "-f", "-", stdin=json.dumps(document))

    def stop(self) -> list[str]:
        """Node, control plane, PostgreSQL; returns what the node left behind (empty: nothing)."""
        try:
            left = self.node.stop()
        finally:
            try:
                self.control_plane.stop()
            finally:
                self.postgres.stop()
        return left


def start_real_cluster(kubernetes_bin: Path, node_bin: Path, work_directory: Path) -> RealCluster:
    """Bridge, PostgreSQL (loopback and the gateway), control plane (on the gateway), node."""
    node = LocalNode(node_bin, kubernetes_bin, work_directory / "node")
    node.create_network()
    postgres = EmbeddedPostgres(
        ServerSettings(
            crash_safe_commits=True,
            extra_listen_addresses=(str(node.gateway),),
            trusted_client_networks=(str(node.layout.pod_subnet),),
        ),
    )
    control_plane = LocalControlPlane(kubernetes_bin, work_directory / "control-plane", node_address=node.gateway)
    try:
        postgres.start()
        control_plane.start()
        node.start(control_plane)
    except BaseException:
        node.stop()
        control_plane.stop()
        postgres.stop()
        raise
    return RealCluster(postgres=postgres, control_plane=control_plane, node=node)


def wait_for(probe: Callable[[], T], description: str, *, timeout_seconds: float = 60.0, interval: float = 0.5) -> T:
    """Call ``probe`` until it returns something truthy; that value, or AssertionError after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds:.0f} s waiting for {description}")
        time.sleep(interval)


OPERATOR_NAMESPACE = "sluice-system"
CHART_DIRECTORY = REPOSITORY_ROOT / "charts" / "sluice"


def install_chart(cluster: RealCluster, *, resync_seconds: int = 2) -> None:
    """``helm install`` of charts/sluice with the imported image: CRDs, RBAC and the operator as a pod, whose
    default database is PostgreSQL on the bridge; waits until the operator pod is Ready."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sluice-database"},
        "stringData": {"uri": cluster.pod_database_url},
    }
    cluster.apply([namespace], namespace=OPERATOR_NAMESPACE)
    cluster.apply([secret], namespace=OPERATOR_NAMESPACE)
    repository, tag = cluster.image.rsplit(":", 1)
    completed = subprocess.run(
        [
            str(cluster.node.layout.kubernetes_bin_directory / "helm"),
            f"--kubeconfig={cluster.control_plane.kubeconfig_path}",
            "install",
            "sluice",
            str(CHART_DIRECTORY),
            f"--namespace={OPERATOR_NAMESPACE}",
            f"--set=image.repository={repository}",
            f"--set=image.tag={tag}",
            "--set=image.pullPolicy=Never",
            "--set=database.secretName=sluice-database",
            f"--set=operator.resyncSeconds={resync_seconds}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr

    def operator_ready() -> bool:
        pods = cluster.get_json(
            "pods", f"--namespace={OPERATOR_NAMESPACE}", "-l", "app.kubernetes.io/component=operator"
        )["items"]
        return any(
            entry["type"] == "Ready" and entry["status"] == "True"
            for pod in pods
            for entry in (pod.get("status") or {}).get("conditions", [])
        )

    wait_for(operator_ready, "the operator pod to be Ready", timeout_seconds=180)
