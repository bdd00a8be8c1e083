"""Removing what a local node leaves once its processes are stopped: container processes, runc shims,
mounts, the pod cgroups, veths and the bridge.

These are the steps after "stop the processes by id" in the order that leaves nothing behind (docs/platform.md,
"The real node"). Each one only touches what is provably this node's: processes found in its own cgroup
root or running its own shim binary, mounts under its own folders, interfaces attached to its own bridge.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "cgroup_directories",
    "delete_bridge",
    "interfaces_on_bridge",
    "kill_processes_in_cgroups",
    "mounts_under",
    "processes_running",
    "remove_cgroups",
    "unmount_under",
]

CGROUP_MOUNT_ROOT = Path("/sys/fs/cgroup")
KILL_WAIT_SECONDS = 5.0


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


def cgroup_directories(cgroup_root: str) -> list[Path]:
    """``/sys/fs/cgroup/<hierarchy>/<cgroup_root>`` for each cgroup v1 hierarchy (and the v2 one if any)."""
    if not CGROUP_MOUNT_ROOT.is_dir():
        return []
    relative = cgroup_root.strip("/")
    hierarchies = [path for path in sorted(CGROUP_MOUNT_ROOT.iterdir()) if path.is_dir() and not path.is_symlink()]
    return [hierarchy / relative for hierarchy in hierarchies if (hierarchy / "cgroup.procs").exists()]


def _processes_in(directories: Iterable[Path]) -> set[int]:
    process_ids: set[int] = set()
    for directory in directories:
        if not directory.is_dir():
            continue
        for procs in directory.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                process_ids.update(int(line) for line in procs.read_text().split() if line.isdigit())
    return process_ids


def kill_processes_in_cgroups(directories: Iterable[Path]) -> list[int]:
    """SIGKILL every process left in the node's pod cgroups (containers whose shim is gone); returns them."""
    directories = list(directories)
    killed = sorted(_processes_in(directories))
    for process_id in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process_id, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while _processes_in(directories) and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed


def remove_cgroups(directories: Iterable[Path]) -> list[Path]:
    """rmdir the node's cgroup trees, deepest first; returns those that could not be removed."""
    left: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        children = sorted((path for path in directory.rglob("*") if path.is_dir()), key=lambda p: -len(p.parts))
        for path in [*children, directory]:
            try:
                path.rmdir()
            except OSError:
                left.append(path)
    return left


def processes_running(executable: Path) -> list[int]:
    """Ids of processes whose executable is exactly ``executable`` (e.g. this node's runc shim binary)."""
    found: list[int] = []
    target = str(executable.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "exe").removesuffix(" (deleted)") == target:
                found.append(int(entry.name))
    return found


def mounts_under(directories: Iterable[Path]) -> list[Path]:
    """Mount points at or below any of ``directories``, deepest first (from /proc/self/mountinfo)."""
    prefixes = [str(directory.absolute()).rstrip("/") for directory in directories]
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        mount_point = fields[4].encode().decode("unicode_escape")
        if any(mount_point == prefix or mount_point.startswith(prefix + "/") for prefix in prefixes):
            found.append(Path(mount_point))
    return sorted(set(found), key=lambda path: -len(path.parts))


def unmount_under(directories: Iterable[Path]) -> list[Path]:
    """Unmount everything below ``directories`` (lazily if busy); returns what is still mounted."""
    directories = list(directories)
    for _ in range(3):
        mounts = mounts_under(directories)
        if not mounts:
            return []
        for mount_point in mounts:
            if _run("umount", str(mount_point)).returncode != 0:
                _run("umount", "-l", str(mount_point))
    return mounts_under(directories)


def interfaces_on_bridge(bridge_name: str) -> list[str]:
    """Names of the interfaces enslaved to the bridge (the pods' veths)."""
    completed = _run("ip", "-o", "link", "show", "master", bridge_name)
    names = []
    for line in completed.stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


def delete_bridge(bridge_name: str) -> None:
    """Delete the veths still attached to the bridge, then the bridge itself."""
    for interface in interfaces_on_bridge(bridge_name):
        _run("ip", "link", "delete", interface)
    if Path(f"/sys/class/net/{bridge_name}").exists():
        _run("ip", "link", "delete", bridge_name, "type", "bridge")
