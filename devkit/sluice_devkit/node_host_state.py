"""What a local node changes on the machine, recorded before it starts and put back after it stops.

The kubelet, kube-proxy and the CNI plugins change machine-wide state that outlives their processes:
sysctls (``net.ipv4.ip_forward`` from the bridge plugin, the kernel tunables the kubelet sets when
``protectKernelDefaults`` is off), iptables chains and rules (``KUBE-*`` from kube-proxy and the kubelet,
``CNI-*`` from portmap), nftables tables (iptables 1.8's nf_tables backend creates them), and a few
well-known folders (``/run/containerd``, ``/var/lib/cni``, ``/var/log/containers``, ``/var/log/pods``).
``HostSnapshot.take()`` records all of it; ``restore()`` removes what appeared since and sets each sysctl
back, and ``differences()`` lists what still differs (the teardown test asserts it is empty).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["WATCHED_PATHS", "WATCHED_SYSCTLS", "HostSnapshot"]

WATCHED_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    "net.netfilter.nf_conntrack_tcp_be_liberal",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
"""Every sysctl the kubelet, kube-proxy or the CNI plugins may write, with the settings this node uses."""

WATCHED_PATHS = (
    Path("/run/containerd"),
    Path("/var/run/netns"),
    Path("/var/lib/cni"),
    Path("/var/lib/kubelet"),
    Path("/var/log/containers"),
    Path("/var/log/pods"),
    Path("/etc/cni"),
    Path("/opt/cni"),
    Path("/opt/containerd"),
    Path("/etc/containerd"),
    Path("/run/nri"),
)
"""Machine-wide folders a kubelet, containerd or CNI may create even when pointed at a work folder."""

IPTABLES_COMMANDS = ("iptables", "ip6tables")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _read_sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for name in WATCHED_SYSCTLS:
        try:
            values[name] = _sysctl_path(name).read_text().strip()
        except OSError:
            continue  # not on this kernel (e.g. br_netfilter missing)
    return values


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


def _iptables_rules(command: str, table: str) -> list[str]:
    """``iptables -t TABLE -S``: chain declarations (``-N``/``-P``) and rules (``-A``), in order."""
    if shutil.which(command) is None:
        return []
    completed = _run([command, "-w", "-t", table, "-S"])
    return completed.stdout.splitlines() if completed.returncode == 0 else []


def _nft_tables() -> list[str]:
    """``nft list tables``: lines like ``table ip nat``."""
    if shutil.which("nft") is None:
        return []
    completed = _run(["nft", "list", "tables"])
    return sorted(line.strip() for line in completed.stdout.splitlines() if line.strip())


@dataclass(frozen=True)
class HostSnapshot:
    """The machine-wide state a node may change, as it was at one moment."""

    sysctls: dict[str, str]
    iptables: dict[tuple[str, str], list[str]]
    nft_tables: list[str]
    existing_paths: frozenset[Path]
    cgroup_directories: dict[Path, bool] = field(default_factory=dict)
    existing_entries: dict[Path, frozenset[str]] = field(default_factory=dict)
    """The names in each watched folder that existed: a kubelet adds to ``/var/log/containers`` even when the
    folder was there before it (one symlink per container), and a killed node's never go away."""

    @classmethod
    def take(cls, cgroup_directories: Sequence[Path] = ()) -> HostSnapshot:
        return cls(
            sysctls=_read_sysctls(),
            iptables={
                (command, table): _iptables_rules(command, table)
                for command in IPTABLES_COMMANDS
                for table in IPTABLES_TABLES
            },
            nft_tables=_nft_tables(),
            existing_paths=frozenset(path for path in WATCHED_PATHS if path.exists()),
            cgroup_directories={path: path.exists() for path in cgroup_directories},
            existing_entries={path: _entries(path) for path in WATCHED_PATHS if path.is_dir()},
        )

    def to_json(self) -> str:
        """The snapshot as JSON, for a later process to restore the machine after this one was killed."""
        return json.dumps(
            {
                "sysctls": self.sysctls,
                "iptables": [[command, table, rules] for (command, table), rules in self.iptables.items()],
                "nft_tables": self.nft_tables,
                "existing_paths": sorted(str(path) for path in self.existing_paths),
                "cgroup_directories": {str(path): existed for path, existed in self.cgroup_directories.items()},
                "existing_entries": {str(path): sorted(names) for path, names in self.existing_entries.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> HostSnapshot:
        data = json.loads(text)
        return cls(
            sysctls={str(name): str(value) for name, value in data["sysctls"].items()},
            iptables={
                (str(command), str(table)): [str(rule) for rule in rules] for command, table, rules in data["iptables"]
            },
            nft_tables=[str(table) for table in data["nft_tables"]],
            existing_paths=frozenset(Path(path) for path in data["existing_paths"]),
            cgroup_directories={Path(path): bool(existed) for path, existed in data["cgroup_directories"].items()},
            existing_entries={
                Path(path): frozenset(str(name) for name in names) for path, names in data["existing_entries"].items()
            },
        )

    def differences(self) -> list[str]:
        """What differs now from this snapshot, one line each (empty: the machine is as it was)."""
        now = HostSnapshot.take(list(self.cgroup_directories))
        found: list[str] = []
        for name, value in self.sysctls.items():
            if now.sysctls.get(name) != value:
                found.append(f"sysctl {name} is {now.sysctls.get(name)}, was {value}")
        for key, rules in self.iptables.items():
            added = [rule for rule in now.iptables.get(key, []) if rule not in rules]
            if added:
                found.append(f"{key[0]} -t {key[1]}: {len(added)} new lines, e.g. {added[0]}")
        for table in now.nft_tables:
            if table not in self.nft_tables:
                found.append(f"nftables: {table} was created")
        for path in WATCHED_PATHS:
            if path.exists() and path not in self.existing_paths:
                found.append(f"{path} was created")
        for path, existed in self.cgroup_directories.items():
            if path.exists() and not existed:
                found.append(f"cgroup {path} was created")
        for path, names in self.existing_entries.items():
            added = sorted(_entries(path) - names)
            if added:
                found.append(f"{path}: {len(added)} new entries, e.g. {added[0]}")
        return found

    def restore(self) -> list[str]:
        """Put back what this snapshot recorded; returns what could not be put back."""
        self._restore_iptables()
        self._remove_new_nft_tables()
        for path in WATCHED_PATHS:
            if path.exists() and path not in self.existing_paths:
                _remove_tree(path)
        for path, names in self.existing_entries.items():
            for name in _entries(path) - names:
                _remove_tree(path / name)
        for name, value in self.sysctls.items():
            try:
                if _sysctl_path(name).read_text().strip() != value:
                    _sysctl_path(name).write_text(value + "\n")
            except OSError:
                continue  # reported by differences()
        return self.differences()

    def _restore_iptables(self) -> None:
        for (command, table), rules_before in self.iptables.items():
            rules_now = _iptables_rules(command, table)
            # Rules first (they reference chains), newest first; then the chains they jumped to.
            for rule in reversed(rules_now):
                if rule.startswith("-A ") and rule not in rules_before:
                    _run([command, "-w", "-t", table, "-D", *_split_rule(rule[3:])])
            new_chains = [rule.split()[1] for rule in rules_now if rule.startswith("-N ") and rule not in rules_before]
            for chain in new_chains:
                _run([command, "-w", "-t", table, "-F", chain])
            for chain in new_chains:
                _run([command, "-w", "-t", table, "-X", chain])

    def _remove_new_nft_tables(self) -> None:
        for table in _nft_tables():
            if table in self.nft_tables:
                continue
            family_and_name = table.split()[1:]
            if len(family_and_name) == 2:
                _run(["nft", "delete", "table", *family_and_name])


def _split_rule(rule: str) -> list[str]:
    """Split an ``iptables -S`` rule into arguments, keeping double-quoted comments whole."""
    return shlex.split(rule)


def _entries(folder: Path) -> frozenset[str]:
    try:
        return frozenset(entry.name for entry in folder.iterdir())
    except OSError:
        return frozenset()


def _remove_tree(path: Path) -> None:
    """Remove a folder the node created: unmount nothing here (mounts are gone by then), just files."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
