"""Free TCP ports for the processes the dev kit starts, chosen where no outgoing connection can take them.

A port the kernel hands out for a bind to port 0 comes from its ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``), the same range it gives every outgoing connection its local
port from. Between the moment such a port is found free and the moment the process it is meant for binds
it, any connection on the machine may take it: a stand-in pod's health server failed so, with "address
already in use", in a full test run on 3 workers. Ports below that range are never handed to outgoing
connections, so only another listener can take one; each is checked by binding the wildcard address, which
conflicts with a listener on any address.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["EPHEMERAL_PORT_RANGE", "free_loopback_ports"]

EPHEMERAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PORTS_BELOW_EPHEMERAL_RANGE = 10_000
"""How far below the ephemeral range ports are chosen from."""
LOWEST_PORT = 1024
ATTEMPTS_PER_PORT = 50


def free_loopback_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on right now, below the ephemeral range (or, where there is no
    room below it, ports the kernel picks)."""
    candidates = _below_ephemeral_range()
    if not candidates:
        return _kernel_picked_ports(count)
    chooser = random.Random()
    held: list[socket.socket] = []
    try:
        for _ in range(count * ATTEMPTS_PER_PORT):
            if len(held) == count:
                break
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind(("0.0.0.0", chooser.choice(candidates)))  # noqa: S104  (a check: conflicts on any address)
            except OSError:
                probe.close()
                continue
            held.append(probe)
        if len(held) < count:
            raise RuntimeError(f"no {count} free ports found in {candidates.start}-{candidates.stop - 1}")
        return [int(probe.getsockname()[1]) for probe in held]
    finally:
        for probe in held:
            probe.close()


def _below_ephemeral_range() -> range:
    try:
        lowest_ephemeral = int(EPHEMERAL_PORT_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return range(0)
    return range(max(LOWEST_PORT, lowest_ephemeral - PORTS_BELOW_EPHEMERAL_RANGE), lowest_ephemeral)


def _kernel_picked_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 a moment ago, picked by the kernel (held open together, so they are distinct)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            held.append(probe)
        return [int(probe.getsockname()[1]) for probe in held]
    finally:
        for probe in held:
            probe.close()
