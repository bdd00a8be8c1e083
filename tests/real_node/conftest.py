"""Fixtures of the end-to-end tests on a real node (marked ``kubernetes`` and ``node``): one cluster with
a kubelet, containerd and the Sluice image per test module (``node_cluster.py``).

On a machine where a node cannot run (not root, no overlayfs or cgroups) these tests are skipped with the
reason; the process stand-in (tests/platform) covers such machines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real_node.node_cluster import (
    RealCluster,
    build_sluice_image,
    install_chart,
    node_binaries_or_reason,
    start_real_cluster,
)


@pytest.fixture(scope="session")
def node_binaries() -> tuple[Path, Path]:
    """(Kubernetes bin, node bin) folders; skips the test where no real node can run."""
    found = node_binaries_or_reason()
    if isinstance(found, str):
        pytest.skip(f"no real node on this machine: {found}")
    return found


@pytest.fixture(scope="module")
def real_cluster(node_binaries: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    """PostgreSQL, the control plane and a node for one test module, with the Sluice image imported. Per
    module, not per session: one node per machine, and other modules start and stop nodes of their own."""
    kubernetes_bin, node_bin = node_binaries
    cluster = start_real_cluster(kubernetes_bin, node_bin, tmp_path_factory.mktemp("real-node"))
    try:
        archive, reference = build_sluice_image()
        cluster.node.import_image(archive)
        cluster.image = reference
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def operator_release(real_cluster: RealCluster) -> RealCluster:
    """The chart installed on the module's cluster: the operator runs as a pod and watches every namespace."""
    install_chart(real_cluster)
    return real_cluster
