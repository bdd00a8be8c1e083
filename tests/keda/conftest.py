"""Fixtures of the KEDA tests (marked ``kubernetes`` and ``keda``): a control plane of this folder's own (so the
external metrics APIService never reaches the session cluster other folders share), KEDA built by
scripts/keda/build.sh and running as local processes against it, and Sluice's CRDs installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice_devkit.control_plane import LocalControlPlane, build_control_plane_binaries
from sluice_devkit.keda import LocalKeda, build_keda_binaries
from tests.custom_resources.cluster import KubernetesCluster, api_client_for
from tests.custom_resources.manifests import CRDS_DIRECTORY, REPOSITORY_ROOT

CONTROL_PLANE_BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh"
KEDA_BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "keda" / "build.sh"


@pytest.fixture(scope="module")
def keda_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalControlPlane]:
    """A loopback control plane (aggregation layer configured) for one test module."""
    bin_directory = build_control_plane_binaries(CONTROL_PLANE_BUILD_SCRIPT)
    with LocalControlPlane(bin_directory, tmp_path_factory.mktemp("keda-control-plane")) as control_plane:
        yield control_plane


@pytest.fixture(scope="module")
def local_keda(keda_control_plane: LocalControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKeda]:
    """KEDA's operator and metrics adapter, its CRDs applied and its APIService Available."""
    keda_bin = build_keda_binaries(KEDA_BUILD_SCRIPT)
    with LocalKeda(keda_bin, keda_control_plane, tmp_path_factory.mktemp("keda")) as keda:
        yield keda


@pytest.fixture(scope="module")
def keda_cluster(keda_control_plane: LocalControlPlane, local_keda: LocalKeda) -> Iterator[KubernetesCluster]:
    """The module's cluster with KEDA running and Sluice's CRDs installed, as the tests' helper."""
    cluster = KubernetesCluster(
        kubeconfig_path=keda_control_plane.kubeconfig_path,
        bin_directory=keda_control_plane.bin_directory,
        api_client=api_client_for(keda_control_plane.kubeconfig_path),
    )
    cluster.kubectl("apply", "--server-side", "--field-manager=sluice-tests", "-f", str(CRDS_DIRECTORY))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    try:
        yield cluster
    finally:
        cluster.close()
