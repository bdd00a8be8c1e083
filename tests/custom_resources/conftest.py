"""Fixtures of the operator's tests: one real control plane (etcd, kube-apiserver, kube-controller-manager)
for the whole session, shared by every test marked ``kubernetes``, with Sluice's CRDs installed from crds/.

The binaries come from scripts/control-plane/build.sh (instant once built; a cold build takes about 15
minutes, so CI runs the script before pytest). Each test module works in its own namespace.

Under pytest-xdist each worker that runs a ``kubernetes`` test starts a control plane of its own (about 410 MB
and 15 s to start here, measured): CRDs and other cluster-wide objects are never shared between workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from sluice_devkit.control_plane import LocalControlPlane, build_control_plane_binaries
from sluice_operator.models import CUSTOM_RESOURCES
from tests.custom_resources.cluster import SHARED_CONTROL_PLANE, KubernetesCluster, api_client_for, wait_until
from tests.custom_resources.manifests import CRDS_DIRECTORY, REPOSITORY_ROOT

BUILD_SCRIPT = REPOSITORY_ROOT / "scripts" / "control-plane" / "build.sh"
ESTABLISHED_TIMEOUT_SECONDS = 30


@pytest.fixture(scope="session")
def kubernetes_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesCluster]:
    """A local control plane for the session, with a kubeconfig and an API client; stopped at the end.

    Shared with tests/kopf_operator (which imports this fixture): one control plane per session, not per folder.
    """

    def start() -> tuple[KubernetesCluster, Callable[[], None]]:
        bin_directory = build_control_plane_binaries(BUILD_SCRIPT)
        control_plane = LocalControlPlane(bin_directory, tmp_path_factory.mktemp("control-plane"))
        control_plane.start()
        cluster = KubernetesCluster(
            kubeconfig_path=control_plane.kubeconfig_path,
            bin_directory=bin_directory,
            api_client=api_client_for(control_plane.kubeconfig_path),
        )

        def stop() -> None:
            try:
                cluster.close()
            finally:
                control_plane.stop()

        return cluster, stop

    cluster = SHARED_CONTROL_PLANE.acquire(start)
    try:
        yield cluster
    finally:
        SHARED_CONTROL_PLANE.release()


@pytest.fixture(scope="session")
def sluice_crds(kubernetes_cluster: KubernetesCluster) -> list[str]:
    """Install crds/ as users do (server-side apply) and wait until every CRD is Established; their names."""
    kubernetes_cluster.kubectl("apply", "--server-side", "--field-manager=sluice-tests", "-f", str(CRDS_DIRECTORY))
    names = [resource.definition.name for resource in CUSTOM_RESOURCES]

    def all_established() -> bool:
        return all(
            kubernetes_cluster.custom_resource_definition_conditions(name).get("Established") == "True"
            for name in names
        )

    wait_until(all_established, bool, timeout_seconds=ESTABLISHED_TIMEOUT_SECONDS, interval=0.2)
    return names


@pytest.fixture(scope="module")
def namespace(kubernetes_cluster: KubernetesCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test module's own, deleted (in the background) after it."""
    module_name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    name = f"{module_name[:40]}-{uuid.uuid4().hex[:6]}"
    kubernetes_cluster.create_namespace(name)
    yield name
    kubernetes_cluster.delete_namespace(name)
