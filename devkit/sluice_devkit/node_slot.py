"""The machine's one slot for a local node on a bridge: a lock that a killed node gives up by dying, and the
reclaiming of whatever that killed node left behind.

A node changes machine-wide state (a bridge, mounts under ``/run``, runc shims that outlive containerd by
design, pod cgroups, iptables chains, sysctls). ``LocalNode.stop()`` puts all of it back, but a node whose
Python process was killed (SIGKILL, an OOM kill, a CI job cancelled, a session ended) never runs ``stop()``.
Before this module the next start found the bridge and refused to run until someone deleted it by hand.

Now:

- ``NodeSlot.acquire()`` takes an exclusive ``flock`` on ``/run/sluice-node-<bridge>.lock``. The kernel drops
  the lock when the holder dies, so a held lock means a live node: the caller waits for it (saying whose it
  is) and gives up with ``NodeSlotBusyError`` after its timeout.
- With the lock taken, anything still on the machine for that bridge is a killed node's: ``reclaim()`` stops
  its processes (the ones whose command line names its folders), kills what is left in its pod cgroups,
  unmounts its folders, deletes its veths and bridge and puts the machine-wide state back from the snapshot
  the killed node saved at its start (``save()``), or, for a node that saved none, removes the Kubernetes and
  CNI iptables chains and the bridge's rules.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sluice_devkit.node_host_state import IPTABLES_COMMANDS, IPTABLES_TABLES, HostSnapshot
from sluice_devkit.node_teardown import (
    cgroup_directories,
    delete_bridge,
    kill_processes_in_cgroups,
    mounts_under,
    remove_cgroups,
    unmount_under,
)

__all__ = ["NodeSlot", "NodeSlotBusyError", "SlotPaths"]

SLOT_DIRECTORY = Path("/run")
WAIT_POLL_SECONDS = 1.0
PROCESS_EXIT_WAIT_SECONDS = 5.0
NODE_CHAIN_PREFIXES = ("KUBE-", "CNI-")
"""iptables chains only a kubelet, kube-proxy or a CNI plugin creates."""


class NodeSlotBusyError(RuntimeError):
    """Another live node holds the slot for this bridge and did not give it up in time."""


@dataclass(frozen=True)
class SlotPaths:
    """Where one bridge's slot keeps its lock, its saved state and its node's runtime folder."""

    bridge_name: str
    runtime_directory: Path

    @property
    def lock_file(self) -> Path:
        return SLOT_DIRECTORY / f"sluice-node-{self.bridge_name}.lock"

    @property
    def state_file(self) -> Path:
        return SLOT_DIRECTORY / f"sluice-node-{self.bridge_name}.state.json"


class NodeSlot:
    """An acquired slot: hold it for the node's lifetime and ``release()`` it after ``LocalNode.stop()``."""

    def __init__(self, paths: SlotPaths, lock_handle: IO[str]) -> None:
        self.paths = paths
        self._lock_handle: IO[str] | None = lock_handle

    @classmethod
    def acquire(cls, paths: SlotPaths, *, timeout_seconds: float) -> NodeSlot:
        """Take the slot, waiting up to ``timeout_seconds`` for a live node that holds it to stop."""
        paths.lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = paths.lock_file.open("a+")
        deadline = time.monotonic() + timeout_seconds
        announced = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(paths.lock_file)
                if time.monotonic() >= deadline:
                    handle.close()
                    raise NodeSlotBusyError(
                        f"another local node ({holder}) runs on the bridge {paths.bridge_name} and did not stop "
                        f"within {timeout_seconds:.0f} s; stop it, or start this one with another bridge name"
                    ) from None
                if not announced:
                    print(
                        f"waiting for the local node {holder} to stop: it holds {paths.lock_file}",
                        file=sys.stderr,
                        flush=True,
                    )
                    announced = True
                time.sleep(WAIT_POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} ({shlex.join(_command_line(os.getpid())[:3])})\n")
        handle.flush()
        return cls(paths, handle)

    def release(self, *, keep_saved_state: bool = False) -> None:
        """Give the slot up (safe to call twice); the saved state goes too unless the node left something."""
        if not keep_saved_state:
            self.paths.state_file.unlink(missing_ok=True)
        if self._lock_handle is not None:
            self._lock_handle.close()  # closing the last descriptor drops the flock
            self._lock_handle = None

    # Saved state ----------------------------------------------------------------------------------------

    def save(self, snapshot: HostSnapshot, work_directory: Path) -> None:
        """Record the machine as it was before this node and where its files are, for a later ``reclaim()``."""
        state = {"process": os.getpid(), "work_directory": str(work_directory), "snapshot": snapshot.to_json()}
        temporary = self.paths.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.paths.state_file)

    def _saved_state(self) -> tuple[HostSnapshot | None, Path | None]:
        try:
            state = json.loads(self.paths.state_file.read_text())
            return HostSnapshot.from_json(state["snapshot"]), Path(state["work_directory"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    # Reclaiming -----------------------------------------------------------------------------------------

    def reclaim(self, cgroup_root: str, extra_mount_roots: list[Path]) -> list[str]:
        """Remove what a killed node left for this bridge; returns what was found (empty: nothing was left)."""
        snapshot, work_directory = self._saved_state()
        folders = [self.paths.runtime_directory, *extra_mount_roots]
        if work_directory is not None:
            folders.append(work_directory)
        found: list[str] = []
        markers = [str(self.paths.runtime_directory), *([str(work_directory)] if work_directory else [])]
        stray = _processes_naming(markers)
        found += [f"process {process_id} ({name})" for process_id, name in stray.items()]
        _kill_and_wait(list(stray))
        cgroups = cgroup_directories(cgroup_root)
        found += [f"container process {process_id}" for process_id in kill_processes_in_cgroups(cgroups)]
        found += [f"mount {path}" for path in mounts_under(folders)]
        unmount_under(folders)
        if Path(f"/sys/class/net/{self.paths.bridge_name}").exists():
            found.append(f"bridge {self.paths.bridge_name}")
            delete_bridge(self.paths.bridge_name)
        if snapshot is not None:
            changed = snapshot.differences()
            found += [f"machine state: {line}" for line in changed]
            if changed:
                snapshot.restore()
            remove_cgroups([path for path in cgroups if not snapshot.cgroup_directories.get(path, False)])
        else:
            found += [f"iptables: {line}" for line in _remove_node_iptables(self.paths.bridge_name)]
        if self.paths.runtime_directory.exists():
            found.append(f"folder {self.paths.runtime_directory}")
            shutil.rmtree(self.paths.runtime_directory, ignore_errors=True)
        if self.paths.state_file.exists():
            self.paths.state_file.unlink(missing_ok=True)
        return found


def _read_holder(lock_file: Path) -> str:
    with contextlib.suppress(OSError):
        text = lock_file.read_text().strip()
        if text:
            return text
    return "of another process"


def _command_line(process_id: int) -> list[str]:
    try:
        raw = Path(f"/proc/{process_id}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _processes_naming(markers: list[str]) -> dict[int, str]:
    """Processes (not this one) whose command line names one of the killed node's folders."""
    found: dict[int, str] = {}
    own = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        arguments = _command_line(int(entry.name))
        if arguments and any(marker in argument for argument in arguments for marker in markers):
            found[int(entry.name)] = Path(arguments[0]).name
    return found


def _kill_and_wait(process_ids: list[int]) -> None:
    for process_id in process_ids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process_id, signal.SIGKILL)
    deadline = time.monotonic() + PROCESS_EXIT_WAIT_SECONDS
    while time.monotonic() < deadline and _alive(process_ids):
        time.sleep(0.05)


def _alive(process_ids: list[int]) -> list[int]:
    """Those still running (a zombie waiting for its parent counts as gone)."""
    alive: list[int] = []
    for process_id in process_ids:
        try:
            state = Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in {"Z", "X"}:
            alive.append(process_id)
    return alive


def _remove_node_iptables(bridge_name: str) -> list[str]:
    """For a node that saved no snapshot: delete rules that jump to Kubernetes/CNI chains or name the bridge,
    then those chains. Returns one line per table that had any."""
    removed: list[str] = []
    for command in IPTABLES_COMMANDS:
        if shutil.which(command) is None:
            continue
        for table in IPTABLES_TABLES:
            listing = subprocess.run([command, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False)
            lines = listing.stdout.splitlines()
            rules = [
                line
                for line in lines
                if line.startswith("-A ")
                and (
                    any(f"-j {prefix}" in line or line.startswith(f"-A {prefix}") for prefix in NODE_CHAIN_PREFIXES)
                    or f" {bridge_name} " in f"{line} "
                )
            ]
            chains = [
                line.split()[1]
                for line in lines
                if line.startswith("-N ") and line.split()[1].startswith(NODE_CHAIN_PREFIXES)
            ]
            for rule in reversed(rules):
                subprocess.run([command, "-w", "-t", table, "-D", *shlex.split(rule[3:])], check=False)
            for chain in chains:
                subprocess.run([command, "-w", "-t", table, "-F", chain], check=False)
            for chain in chains:
                subprocess.run([command, "-w", "-t", table, "-X", chain], check=False)
            if rules or chains:
                removed.append(f"{command} -t {table}: {len(rules)} rules and {len(chains)} chains")
    return removed
