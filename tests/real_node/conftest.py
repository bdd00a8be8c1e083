"""Fixtures of the end-to-end tests on a real node (marked ``kubernetes`` and ``node``): one cluster with
a kubelet, containerd and the Sluice image for this folder (``node_cluster.py``).

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
    start_real_cluster,
)


@pytest.fixture(scope="package")
def real_cluster(node_binaries: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    """PostgreSQL, the control plane and a node with the Sluice image imported, shared by this folder's modules
    (the example's tests, then KEDA's in a namespace and database of their own). Per package, not per session:
    one node per machine, and tests/bare_node and tests/argocd_live start and stop nodes of their own."""
    kubernetes_bin, node_bin = node_binaries
    cluster = start_real_cluster(kubernetes_bin, node_bin, tmp_path_factory.mktemp("real-node"))
    try:
        archive, reference = build_sluice_image()
        cluster.node.import_image(archive)
        cluster.image = reference
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="package")
def operator_release(real_cluster: RealCluster) -> RealCluster:
    """The chart installed on the module's cluster: the operator runs as a pod and watches every namespace."""
    install_chart(real_cluster)
    return real_cluster
