"""The dev kit's free ports (sluice_devkit/free_ports.py) come from below the kernel's ephemeral range, where no
outgoing connection can take one before the process it is meant for binds it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sluice_devkit import free_ports
from sluice_devkit.free_ports import free_loopback_ports


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def test_ports_are_distinct_free_and_below_this_machines_ephemeral_range() -> None:
    lowest_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = free_loopback_ports(20)
    assert len(set(ports)) == 20
    assert all(lowest_ephemeral - free_ports.PORTS_BELOW_EPHEMERAL_RANGE <= port < lowest_ephemeral for port in ports)
    assert all(_bindable(port) for port in ports)


def test_the_range_follows_the_kernel_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("45000\t60999\n")
    monkeypatch.setattr(free_ports, "EPHEMERAL_PORT_RANGE", setting)
    assert all(35_000 <= port < 45_000 for port in free_loopback_ports(10))


def test_a_port_with_a_listener_is_not_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for two ports only, one of them held by a listener on 127.0.0.1, the other is always chosen."""
    lowest = free_loopback_ports(1)[0]
    setting = tmp_path / "ip_local_port_range"
    setting.write_text(f"{lowest + 2} 60999\n")
    monkeypatch.setattr(free_ports, "EPHEMERAL_PORT_RANGE", setting)
    monkeypatch.setattr(free_ports, "PORTS_BELOW_EPHEMERAL_RANGE", 2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        try:
            listener.bind(("127.0.0.1", lowest))
        except OSError:
            pytest.fail(f"port {lowest} was taken between two calls; run again")
        listener.listen()
        if not _bindable(lowest + 1):
            pytest.fail(f"port {lowest + 1} is in use on this machine; run again")
        assert {free_loopback_ports(1)[0] for _ in range(20)} == {lowest + 1}


def test_without_room_below_the_range_the_kernel_picks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("1024 65000\n")
    monkeypatch.setattr(free_ports, "EPHEMERAL_PORT_RANGE", setting)
    ports = free_loopback_ports(3)
    assert len(set(ports)) == 3
    assert all(1024 <= port <= 65000 for port in ports)
