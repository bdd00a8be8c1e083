"""The node's lifecycle: it starts (Node Ready), runs a pod on the CNI bridge, and its teardown leaves
nothing behind (processes, shims, mounts, cgroups, veths, the bridge, iptables chains, sysctls).

One node per machine: the example's cluster is module-scoped, so it is gone when this module runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sluice_devkit.control_plane import LocalControlPlane
from sluice_devkit.local_node import LocalNode
from sluice_devkit.node_teardown import interfaces_on_bridge, mounts_under
from tests.bare_node.sleeper import SLEEPER_POD_JSON
from tests.real_node.node_cluster import wait_for

pytestmark = [pytest.mark.kubernetes, pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(300)]

NODE_UP_BUDGET_SECONDS = 30.0


def test_a_pod_runs_on_the_bridge_and_teardown_leaves_nothing(node_binaries: tuple[Path, Path], tmp_path: Path) -> None:
    kubernetes_bin, node_bin = node_binaries
    node = LocalNode(node_bin, kubernetes_bin, tmp_path / "node")
    node.create_network()
    control_plane = LocalControlPlane(kubernetes_bin, tmp_path / "control-plane", node_address=node.gateway)
    try:
        control_plane.start()
        node.start(control_plane)
        assert node.ready_after_seconds is not None
        assert node.ready_after_seconds < NODE_UP_BUDGET_SECONDS, node.timings
        applied_at = time.monotonic()
        node.kubectl("apply", "-f", "-", input_text=SLEEPER_POD_JSON)

        def phase() -> str:
            return node.kubectl("get", "pod", "sleeper", "-o", "jsonpath={.status.phase}").stdout

        wait_for(lambda: phase() == "Running", "the pod to run", timeout_seconds=60)
        print(f"pod Running {time.monotonic() - applied_at:.1f} s after kubectl apply; node up in {node.timings}")
        pod_ip = node.kubectl("get", "pod", "sleeper", "-o", "jsonpath={.status.podIP}").stdout
        assert pod_ip.startswith("10.244.0."), pod_ip
        assert interfaces_on_bridge(node.layout.bridge_name), "the pod's veth is on the bridge"
        assert mounts_under([node.layout.work_directory, node.layout.runtime_directory]), "the pod is mounted"
    finally:
        left = node.stop()
        control_plane.stop()
    assert left == []
    assert node.leftovers() == []
