"""A node killed without its teardown (SIGKILL, a cancelled CI job, a session that ended) does not block the
next one: its bridge, mounts, runc shims, pause containers and iptables chains are reclaimed by the next
start, which then runs pods; and a live node's slot is waited for, never taken over.

This is how the project's CI once failed: a run on the same machine had been killed, its bridge ``rn0`` was
still there, and every real-node test stopped at "could not create the bridge rn0 (File exists)".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluice_devkit.control_plane import LocalControlPlane
from sluice_devkit.local_node import LocalNode, NodeStartError
from sluice_devkit.node_host_state import HostSnapshot
from sluice_devkit.node_teardown import cgroup_directories, mounts_under, processes_running
from tests.bare_node.sleeper import SLEEPER_POD_JSON
from tests.real_node.node_cluster import wait_for

pytestmark = [pytest.mark.kubernetes, pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(420)]

NODE_THAT_GETS_KILLED = """
import json, sys, time
from pathlib import Path
from sluice_devkit.control_plane import LocalControlPlane
from sluice_devkit.local_node import LocalNode

kubernetes_bin, node_bin, work, pod = sys.argv[1:5]
node = LocalNode(Path(node_bin), Path(kubernetes_bin), Path(work) / "node")
node.create_network()
control_plane = LocalControlPlane(Path(kubernetes_bin), Path(work) / "control-plane", node_address=node.gateway)
control_plane.start()
node.start(control_plane)
node.kubectl("apply", "-f", "-", input_text=pod)
deadline = time.monotonic() + 90
while node.kubectl("get", "pod", "sleeper", "-o", "jsonpath={.status.phase}").stdout != "Running":
    if time.monotonic() > deadline:
        sys.exit("the pod did not run")
    time.sleep(0.5)
print("running", flush=True)
time.sleep(600)
"""


def _start_and_kill_a_node(kubernetes_bin: Path, node_bin: Path, work: Path) -> None:
    """Run a node with a pod in a child process, then SIGKILL that process group: no teardown runs."""
    pod = SLEEPER_POD_JSON
    child = subprocess.Popen(
        [sys.executable, "-c", NODE_THAT_GETS_KILLED, str(kubernetes_bin), str(node_bin), str(work), pod],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "running", f"the node to be killed did not come up (exit {child.poll()})"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()


def test_a_killed_nodes_leftovers_are_reclaimed_by_the_next_start(
    node_binaries: tuple[Path, Path], tmp_path: Path
) -> None:
    kubernetes_bin, node_bin = node_binaries
    probe = LocalNode(node_bin, kubernetes_bin, tmp_path / "probe")
    before = HostSnapshot.take(cgroup_directories(probe.layout.cgroup_root))

    _start_and_kill_a_node(kubernetes_bin, node_bin, tmp_path / "killed")
    shim = node_bin / "containerd-shim-runc-v2"
    assert Path(f"/sys/class/net/{probe.layout.bridge_name}").exists(), "the killed node left its bridge"
    assert processes_running(shim), "the killed node's runc shims outlive it"
    assert mounts_under([probe.layout.runtime_directory]), "and its mounts"

    node = LocalNode(node_bin, kubernetes_bin, tmp_path / "node", slot_timeout_seconds=30)
    node.create_network()
    control_plane = LocalControlPlane(kubernetes_bin, tmp_path / "control-plane", node_address=node.gateway)
    try:
        reclaimed = node.reclaimed
        print(f"reclaimed {len(reclaimed)} things, e.g. {reclaimed[:3]}")
        assert f"bridge {node.layout.bridge_name}" in reclaimed
        assert any(line.startswith("process ") and "shim" in line for line in reclaimed), reclaimed
        assert any(line.startswith("mount ") for line in reclaimed), reclaimed
        assert not processes_running(shim), "the killed node's shims are gone before the new node starts"
        control_plane.start()
        node.start(control_plane)
        node.kubectl("apply", "-f", "-", input_text=SLEEPER_POD_JSON)
        wait_for(
            lambda: node.kubectl("get", "pod", "sleeper", "-o", "jsonpath={.status.phase}").stdout == "Running",
            "a pod on the node that reclaimed the slot",
            timeout_seconds=90,
        )
    finally:
        left = node.stop()
        control_plane.stop()
    assert left == []
    assert before.differences() == [], "the machine is as it was before the killed node"


def test_a_live_nodes_slot_is_waited_for_not_taken(node_binaries: tuple[Path, Path], tmp_path: Path) -> None:
    kubernetes_bin, node_bin = node_binaries
    holder = LocalNode(node_bin, kubernetes_bin, tmp_path / "holder")
    holder.create_network()
    try:
        second = LocalNode(node_bin, kubernetes_bin, tmp_path / "second", slot_timeout_seconds=2)
        started = time.monotonic()
        with pytest.raises(NodeStartError, match=r"another local node .* runs on the bridge"):
            second.create_network()
        assert time.monotonic() - started >= 2, "it waited for the holder before giving up"
        assert Path(f"/sys/class/net/{holder.layout.bridge_name}").exists(), "the holder's bridge is untouched"
        assert second.stop() == []
        assert Path(f"/sys/class/net/{holder.layout.bridge_name}").exists(), "and still there after second.stop()"
    finally:
        assert holder.stop() == []
    successor = LocalNode(node_bin, kubernetes_bin, tmp_path / "successor", slot_timeout_seconds=2)
    successor.create_network()
    try:
        assert successor.reclaimed == [], "a node that stopped cleanly leaves nothing to reclaim"
    finally:
        assert successor.stop() == []
