"""``HostSnapshot``: what a node changes on the machine is found and put back (iptables chains and rules,
nftables tables, sysctls, machine-wide folders). Real iptables and /proc/sys, so root only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice_devkit.node_host_state import WATCHED_PATHS, HostSnapshot

pytestmark = [pytest.mark.node]

CHAIN = "SLUICE-HOST-STATE-TEST"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@pytest.fixture
def snapshot() -> Iterator[HostSnapshot]:
    if os.geteuid() != 0:
        pytest.skip("changes iptables and sysctls: root only")
    taken = HostSnapshot.take()
    yield taken
    taken.restore()  # whatever the test did, even if it failed


def _iptables(*arguments: str) -> None:
    subprocess.run(["iptables", "-w", *arguments], check=True, capture_output=True)


def test_new_chains_rules_and_sysctls_are_found_and_put_back(snapshot: HostSnapshot) -> None:
    forward_before = IP_FORWARD.read_text().strip()
    _iptables("-t", "nat", "-N", CHAIN)
    _iptables("-t", "nat", "-A", CHAIN, "-m", "comment", "--comment", "two words", "-j", "RETURN")
    _iptables("-t", "nat", "-I", "PREROUTING", "-j", CHAIN)
    _iptables("-I", "FORWARD", "-i", "sluice-nothing", "!", "-o", "sluice-nothing", "-j", "DROP")
    IP_FORWARD.write_text("0\n" if forward_before == "1" else "1\n")

    found = snapshot.differences()
    assert any("iptables -t nat" in line for line in found), found
    assert any("iptables -t filter" in line for line in found), found
    assert any("net.ipv4.ip_forward" in line for line in found), found

    assert snapshot.restore() == []
    assert IP_FORWARD.read_text().strip() == forward_before
    listed = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=True)
    assert CHAIN not in listed.stdout


def test_a_created_machine_wide_folder_is_found_and_removed(snapshot: HostSnapshot) -> None:
    folder = next((path for path in WATCHED_PATHS if path not in snapshot.existing_paths), None)
    if folder is None:
        pytest.skip("every watched machine-wide folder existed before: the test would remove someone's folder")
    (folder / "cache").mkdir(parents=True)
    assert f"{folder} was created" in snapshot.differences()
    assert snapshot.restore() == []
    assert not folder.exists()


def test_new_entries_in_a_folder_that_existed_are_found_and_removed(snapshot: HostSnapshot) -> None:
    folder = next((path for path in WATCHED_PATHS if path not in snapshot.existing_paths), None)
    if folder is None:
        pytest.skip("every watched machine-wide folder existed before: the test would remove someone's folder")
    (folder / "kept").mkdir(parents=True)
    with_folder = HostSnapshot.take()
    (folder / "container.log").symlink_to("/nonexistent/0.log")  # what a kubelet leaves in /var/log/containers
    assert any(line.startswith(f"{folder}: 1 new entries") for line in with_folder.differences())
    assert with_folder.restore() == []
    assert sorted(entry.name for entry in folder.iterdir()) == ["kept"]
    assert snapshot.restore() == []
    assert not folder.exists()


def test_a_snapshot_survives_its_process_as_json(snapshot: HostSnapshot) -> None:
    restored = HostSnapshot.from_json(snapshot.to_json())
    assert restored == snapshot
    assert restored.differences() == snapshot.differences()
