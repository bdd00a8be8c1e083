"""Fixtures of the Argo CD tests (marked ``kubernetes``, ``node`` and ``argocd``): one real cluster per module
(PostgreSQL, the control plane, a kubelet node with the Sluice image; tests/real_node/node_cluster.py), empty
of Sluice, with Argo CD (scripts/argocd/build.sh) running against it as local processes and a Git repository
on loopback that holds charts/sluice and examples/end-to-end/ (tests/argocd_live/gitops.py).

On a machine where a node cannot run (not root, no overlayfs or cgroups) these tests are skipped with the
reason, like the other real-node tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice_devkit.argocd import LocalArgoCD, build_argocd_binaries
from sluice_devkit.demo_sink import CloudEventSink
from sluice_devkit.git_repository import LocalGitRepository
from tests.argocd_live.gitops import ARGOCD_CM_PATCH, CHART_DIRECTORY, GitOps, example_files
from tests.real_node.node_cluster import (
    REPOSITORY_ROOT,
    build_sluice_image,
    start_real_cluster,
)

ARGOCD_BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "argocd" / "build.sh"


@pytest.fixture(scope="module")
def gitops(node_binaries: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOps]:
    """An empty real cluster, Argo CD against it (Sluice's argocd-cm patch merged), and the Git repository."""
    kubernetes_bin, node_bin = node_binaries
    argocd_bin = build_argocd_binaries(ARGOCD_BUILD_SCRIPT)
    work_directory = tmp_path_factory.mktemp("argocd-live")
    cluster = start_real_cluster(kubernetes_bin, node_bin, work_directory)
    sink: CloudEventSink | None = None
    repository: LocalGitRepository | None = None
    argocd: LocalArgoCD | None = None
    try:
        archive, reference = build_sluice_image()
        cluster.node.import_image(archive)
        cluster.image = reference
        sink = CloudEventSink(host=str(cluster.node.gateway))
        sink.start()
        repository = LocalGitRepository(work_directory / "git", name="sluice-deploy").start()
        repository.copy_tree(CHART_DIRECTORY, "charts/sluice")
        repository.write(example_files(database_url=cluster.pod_database_url, sink_url=sink.url))
        repository.commit("Sluice chart and the end-to-end example")
        argocd = LocalArgoCD(
            argocd_bin,
            cluster.control_plane,
            work_directory / "argocd",
            tool_directories=[kubernetes_bin],  # helm (built with the control plane)
            configuration_patches=[ARGOCD_CM_PATCH],
        ).start()
        print(f"\n[argocd timing] Argo CD started in {argocd.ready_after_seconds:.1f} s")
        yield GitOps(cluster=cluster, argocd=argocd, repository=repository, sink=sink)
    finally:
        try:
            if argocd is not None:
                argocd.stop()
            if repository is not None:
                repository.stop()
            if sink is not None:
                sink.stop()
        finally:
            cluster.stop()
