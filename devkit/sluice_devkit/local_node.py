"""A real one-node Kubernetes node on this machine: containerd + runc, the kubelet, kube-scheduler,
kube-proxy and a CNI bridge, beside the local control plane (``control_plane.py``).

Lifecycle, as the platform and the test fixture use it::

    node = LocalNode(node_bin, kubernetes_bin, work_directory)
    node.create_network()            # the bridge rn0 (10.244.0.1/24) first: the API server and
                                     # PostgreSQL listen on its gateway address so pods reach them
    control_plane = LocalControlPlane(kubernetes_bin, ..., node_address=node.gateway).start()
    node.start(control_plane)        # containerd, pause image, kubelet, scheduler, proxy; Node Ready
    node.import_image(archive)       # an OCI archive into containerd's k8s.io namespace
    ...
    node.stop()                      # pods deleted through the API, processes stopped by id, shims,
                                     # mounts, cgroups, veths, bridge, iptables, sysctls: nothing left
    control_plane.stop()

It needs root, overlayfs and cgroups (``node_unsupported_reason()`` says what is missing). One node runs per
bridge and machine: ``create_network()`` takes the bridge's slot (``node_slot.py``), waiting while another live
node holds it, and first reclaims whatever a killed node left on the machine.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sluice_devkit.control_plane import LocalControlPlane
from sluice_devkit.control_plane_certificates import issue_leaf_certificate
from sluice_devkit.managed_process import ControlPlaneStartError, ManagedProcess, free_loopback_ports
from sluice_devkit.node_config import (
    DEFAULT_BRIDGE_NAME,
    DEFAULT_POD_SUBNET,
    NodeLayout,
    cni_network_config,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)
from sluice_devkit.node_host_state import HostSnapshot
from sluice_devkit.node_images import import_image_archive, write_pause_image_archive
from sluice_devkit.node_slot import NodeSlot, NodeSlotBusyError, SlotPaths
from sluice_devkit.node_teardown import (
    cgroup_directories,
    delete_bridge,
    interfaces_on_bridge,
    kill_processes_in_cgroups,
    mounts_under,
    processes_running,
    remove_cgroups,
    unmount_under,
)

__all__ = ["DEFAULT_NODE_NAME", "PAUSE_IMAGE", "LocalNode", "NodeStartError", "node_unsupported_reason"]

DEFAULT_NODE_NAME = "sluice-node"
DEFAULT_CGROUP_ROOT = "/sluice-node"
DEFAULT_READY_TIMEOUT_SECONDS = 120.0
DEFAULT_SLOT_TIMEOUT_SECONDS = 900.0
"""How long ``create_network()`` waits for another live node on the same bridge to stop."""
STOP_GRACE_PERIOD_SECONDS = 10.0
POD_DELETION_TIMEOUT_SECONDS = 60.0
CONTAINERD_RUNTIME_DIRECTORY = Path("/run/containerd")
POLL_SECONDS = 0.2
PAUSE_IMAGE = "localhost/sluice-pause:node"
"""The pod sandbox image, written from the built pause binary and imported at start (never pulled)."""


class NodeStartError(ControlPlaneStartError):
    """A node process exited, or the node did not become Ready in time, while starting."""


def node_unsupported_reason(node_bin_directory: Path | None = None) -> str | None:
    """Why a real node cannot run on this machine, or None when it can (root, overlayfs, cgroups, tools)."""
    if os.geteuid() != 0:
        return "not root (a node needs to create a bridge, iptables rules and mounts)"
    filesystems = Path("/proc/filesystems").read_text() if Path("/proc/filesystems").exists() else ""
    if "overlay" not in filesystems:
        return "the kernel has no overlayfs (containerd's snapshotter needs it)"
    if not (Path("/sys/fs/cgroup/memory").is_dir() or Path("/sys/fs/cgroup/cgroup.controllers").exists()):
        return "no memory cgroup under /sys/fs/cgroup"
    for tool in ("ip", "iptables", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (scripts/bootstrap.sh installs the node's Debian packages)"
    if node_bin_directory is not None and not (node_bin_directory / "containerd").exists():
        return f"the node binaries are not built in {node_bin_directory} (scripts/node/build.sh)"
    return None


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


class LocalNode:
    """containerd, kubelet, kube-scheduler and kube-proxy for one local control plane."""

    def __init__(
        self,
        node_bin_directory: Path,
        kubernetes_bin_directory: Path,
        work_directory: Path,
        *,
        node_name: str = DEFAULT_NODE_NAME,
        bridge_name: str = DEFAULT_BRIDGE_NAME,
        pod_subnet: str = DEFAULT_POD_SUBNET,
        cgroup_root: str = DEFAULT_CGROUP_ROOT,
        ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS,
        slot_timeout_seconds: float = DEFAULT_SLOT_TIMEOUT_SECONDS,
    ) -> None:
        ports = free_loopback_ports(6)
        self.layout = NodeLayout(
            work_directory=Path(work_directory).absolute(),
            node_bin_directory=Path(node_bin_directory).absolute(),
            kubernetes_bin_directory=Path(kubernetes_bin_directory).absolute(),
            node_name=node_name,
            bridge_name=bridge_name,
            pod_subnet=ipaddress.IPv4Network(pod_subnet),
            cgroup_root=cgroup_root,
            pause_image=PAUSE_IMAGE,
            kubelet_port=ports[0],
            kubelet_healthz_port=ports[1],
            proxy_healthz_port=ports[2],
            proxy_metrics_port=ports[3],
            scheduler_port=ports[4],
        )
        self.ready_timeout_seconds = ready_timeout_seconds
        self.slot_timeout_seconds = slot_timeout_seconds
        self._slot: NodeSlot | None = None
        self.reclaimed: list[str] = []
        """What a killed node had left on the machine and ``create_network()`` removed before starting."""
        self._processes: dict[str, ManagedProcess] = {}
        self._snapshot: HostSnapshot | None = None
        self._control_plane: LocalControlPlane | None = None
        self._network_created = False
        self.ready_after_seconds: float | None = None
        """Seconds from the start of ``start()`` until the Node was Ready and kube-proxy had synced."""
        self.timings: dict[str, float] = {}

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.layout.gateway

    @property
    def process_ids(self) -> dict[str, int]:
        return {name: pid for name, process in self._processes.items() if (pid := process.process_id) is not None}

    @property
    def cgroups(self) -> list[Path]:
        return cgroup_directories(self.layout.cgroup_root)

    def log_path(self, name: str) -> Path:
        return self.layout.log_directory / f"{name}.log"

    # Network ------------------------------------------------------------------------------------------

    def create_network(self) -> None:
        """Record the machine's state, then create the bridge with the gateway address (before anything
        that listens on it starts) and a rule that drops traffic routed from it to any other interface."""
        reason = node_unsupported_reason(self.layout.node_bin_directory)
        if reason is not None:
            raise NodeStartError(f"a real node cannot run here: {reason}")
        bridge = self.layout.bridge_name
        self._take_slot()
        atexit.register(self.stop)
        created = _run("ip", "link", "add", bridge, "type", "bridge")
        if created.returncode != 0:
            self.stop()
            raise NodeStartError(f"could not create the bridge {bridge}: {created.stderr.strip()}")
        self._network_created = True
        gateway = f"{self.gateway}/{self.layout.pod_subnet.prefixlen}"
        for command in (
            ("ip", "address", "add", gateway, "dev", bridge),
            ("ip", "link", "set", bridge, "up"),
            # Pods talk to the node (API server, PostgreSQL, sinks) and to each other; nothing is routed on.
            ("iptables", "-w", "-I", "FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "DROP"),
        ):
            completed = _run(*command)
            if completed.returncode != 0:
                self.stop()
                raise NodeStartError(f"{' '.join(command)} failed: {completed.stderr.strip()}")

    def _take_slot(self) -> None:
        """Take the bridge's slot, remove what a killed node left, then record the machine as it is now."""
        paths = SlotPaths(self.layout.bridge_name, self.layout.runtime_directory)
        try:
            self._slot = NodeSlot.acquire(paths, timeout_seconds=self.slot_timeout_seconds)
        except NodeSlotBusyError as error:
            raise NodeStartError(str(error)) from None
        self.reclaimed = self._slot.reclaim(self.layout.cgroup_root, [CONTAINERD_RUNTIME_DIRECTORY])
        if self.reclaimed:
            shown = "; ".join(self.reclaimed[:8]) + (" ..." if len(self.reclaimed) > 8 else "")
            print(f"a killed local node had left {len(self.reclaimed)} things; removed: {shown}", file=sys.stderr)
        self._snapshot = HostSnapshot.take(self.cgroups)
        self._slot.save(self._snapshot, self.layout.work_directory)

    # Starting -----------------------------------------------------------------------------------------

    def start(self, control_plane: LocalControlPlane) -> None:
        """Start containerd, the kubelet, kube-scheduler and kube-proxy; wait until the Node is Ready and the
        ``kubernetes`` Service is programmed. On failure everything started is stopped."""
        if not self._network_created:
            self.create_network()
        if control_plane.node_address != self.gateway:
            raise NodeStartError(f"the control plane must be created with node_address={self.gateway}")
        self._control_plane = control_plane
        started_at = time.monotonic()
        deadline = started_at + self.ready_timeout_seconds
        try:
            self._start(control_plane, deadline, started_at)
        except BaseException:
            self.stop()
            raise
        self.ready_after_seconds = time.monotonic() - started_at

    def _mark(self, name: str, started_at: float) -> None:
        self.timings[name] = round(time.monotonic() - started_at, 2)

    def _start(self, control_plane: LocalControlPlane, deadline: float, started_at: float) -> None:
        layout = self.layout
        for directory in (
            layout.work_directory,
            layout.log_directory,
            layout.cni_config_directory,
            layout.containerd_state,
            layout.kubelet_root,
            layout.pod_logs_directory,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        for cgroup in self.cgroups:
            cgroup.mkdir(exist_ok=True)  # the kubelet refuses a cgroupRoot that does not exist
        files = self._write_files(control_plane)
        self._mark("files", started_at)

        containerd = self._launch(
            "containerd",
            [
                "/usr/bin/env",
                f"PATH={layout.node_bin_directory}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
                str(layout.node_bin_directory / "containerd"),
                f"--config={files['containerd']}",
                "--log-level=warn",
            ],
        )
        self._wait(containerd, deadline, "containerd's socket", layout.containerd_socket.exists)
        pause_archive = write_pause_image_archive(
            layout.node_bin_directory / "pause", layout.work_directory / "pause.oci.tar", image_name=layout.pause_image
        )
        self.import_image(pause_archive)
        self._mark("containerd", started_at)

        kubernetes_bin = layout.kubernetes_bin_directory
        kubelet = self._launch(
            "kubelet",
            [
                str(kubernetes_bin / "kubelet"),
                f"--config={files['kubelet']}",
                f"--kubeconfig={files['kubelet-kubeconfig']}",
                f"--root-dir={layout.kubelet_root}",
                f"--hostname-override={layout.node_name}",
                f"--node-ip={self.gateway}",
                f"--cert-dir={layout.certificate_directory / 'kubelet'}",
            ],
        )
        self._launch(
            "kube-scheduler",
            [
                str(kubernetes_bin / "kube-scheduler"),
                f"--kubeconfig={files['scheduler-kubeconfig']}",
                f"--authentication-kubeconfig={files['scheduler-kubeconfig']}",
                f"--authorization-kubeconfig={files['scheduler-kubeconfig']}",
                "--authentication-skip-lookup=true",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={layout.scheduler_port}",
                f"--cert-dir={layout.certificate_directory / 'kube-scheduler'}",
            ],
        )
        proxy = self._launch("kube-proxy", [str(kubernetes_bin / "kube-proxy"), f"--config={files['kube-proxy']}"])
        self._wait(kubelet, deadline, f"Node {layout.node_name} to be Ready", self._node_ready)
        self._mark("node-ready", started_at)
        self._wait(proxy, deadline, "kube-proxy to program the kubernetes Service", self._service_programmed)
        self._mark("proxy-synced", started_at)

    def _write_files(self, control_plane: LocalControlPlane) -> dict[str, Path]:
        layout = self.layout
        certificates = control_plane.certificates
        directory = layout.certificate_directory

        def kubeconfig(name: str, common_name: str, organization: str | None) -> Path:
            certificate, key = issue_leaf_certificate(
                certificates, directory, name=name, common_name=common_name, organization=organization
            )
            path = layout.work_directory / f"{name}.kubeconfig"
            control_plane.write_kubeconfig(path, user_name=common_name, client_certificate=certificate, client_key=key)
            return path

        serving_certificate, serving_key = issue_leaf_certificate(
            certificates,
            directory,
            name="kubelet-serving",
            common_name=f"system:node:{layout.node_name}",
            addresses=[self.gateway],
        )
        files = {
            "kubelet-kubeconfig": kubeconfig("kubelet", f"system:node:{layout.node_name}", "system:nodes"),
            "scheduler-kubeconfig": kubeconfig("kube-scheduler", "system:kube-scheduler", None),
            "proxy-kubeconfig": kubeconfig("kube-proxy", "system:kube-proxy", None),
            "containerd": layout.work_directory / "containerd.toml",
            "kubelet": layout.work_directory / "kubelet.json",
            "kube-proxy": layout.work_directory / "kube-proxy.json",
        }
        files["containerd"].write_text(containerd_config(layout))
        (layout.cni_config_directory / "10-sluice-node.conflist").write_text(
            json.dumps(cni_network_config(layout), indent=2) + "\n"
        )
        kubelet = kubelet_config(
            layout,
            client_ca_file=certificates.certificate_authority_certificate,
            serving_certificate=serving_certificate,
            serving_key=serving_key,
        )
        files["kubelet"].write_text(json.dumps(kubelet, indent=2) + "\n")
        proxy = kube_proxy_config(layout, kubeconfig=files["proxy-kubeconfig"])
        files["kube-proxy"].write_text(json.dumps(proxy, indent=2) + "\n")
        return files

    def _launch(self, name: str, command: Sequence[str]) -> ManagedProcess:
        process = ManagedProcess(name, command, self.log_path(name))
        self._processes[name] = process
        process.start(terminate_with_parent=True)
        return process

    def _wait(self, process: ManagedProcess, deadline: float, description: str, done: Any) -> None:
        while not done():
            try:
                process.raise_if_exited()
            except ControlPlaneStartError as error:
                raise NodeStartError(str(error)) from None
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"timed out waiting for {description}; see the logs in {self.layout.log_directory}"
                )
            time.sleep(POLL_SECONDS)

    def kubectl(
        self, *arguments: str, input_text: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """kubectl as the control plane's administrator (output captured, not checked)."""
        assert self._control_plane is not None
        command = [
            str(self.layout.kubernetes_bin_directory / "kubectl"),
            f"--kubeconfig={self._control_plane.kubeconfig_path}",
            *arguments,
        ]
        return subprocess.run(command, input=input_text, capture_output=True, text=True, timeout=timeout, check=False)

    def _node_ready(self) -> bool:
        completed = self.kubectl(
            "get", "node", self.layout.node_name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
        )
        return completed.returncode == 0 and completed.stdout.strip() == "True"

    def _service_programmed(self) -> bool:
        completed = _run("iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES")
        return completed.returncode == 0 and "default/kubernetes:https" in completed.stdout

    # Images -------------------------------------------------------------------------------------------

    def import_image(self, archive_path: Path) -> str:
        """Import an OCI archive (``index.json`` naming the image) so pods can use it without pulling."""
        return import_image_archive(
            self.layout.node_bin_directory / "ctr", self.layout.containerd_socket, Path(archive_path)
        )

    # Stopping -----------------------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Tear the node down in the order that leaves nothing behind; returns what is left (empty: nothing).

        Safe to call more than once and after a failed start. A node that never took the bridge's slot (or
        already gave it up) touches nothing: the machine-wide state may be another live node's.
        """
        if self._slot is None:
            atexit.unregister(self.stop)
            return []
        if self._processes.get("kubelet") is not None and self._control_plane is not None:
            self._delete_pods_through_the_api()
        for name in ("kube-proxy", "kube-scheduler", "kubelet", "containerd"):
            process = self._processes.get(name)
            if process is not None:
                process.stop(STOP_GRACE_PERIOD_SECONDS)
        cgroups = self.cgroups
        kill_processes_in_cgroups(cgroups)
        shim = self.layout.node_bin_directory / "containerd-shim-runc-v2"
        for process_id in processes_running(shim):  # they outlive containerd by design
            try:
                os.kill(process_id, 9)
            except ProcessLookupError:
                continue
        self._wait_until_gone(lambda: processes_running(shim))
        unmount_under(self._node_folders())
        if self._snapshot is not None:
            remove_cgroups([path for path in cgroups if not self._snapshot.cgroup_directories.get(path, False)])
        shutil.rmtree(self.layout.runtime_directory, ignore_errors=True)
        if self._network_created:
            delete_bridge(self.layout.bridge_name)
            self._network_created = False
        left: list[str] = []
        if self._snapshot is not None:
            left = self._snapshot.restore()
        atexit.unregister(self.stop)
        left += self.leftovers(include_host_state=False)
        if self._slot is not None:
            # With something left, the saved state stays so that the next start reclaims it.
            self._slot.release(keep_saved_state=bool(left))
            self._slot = None
        return left

    def _node_folders(self) -> list[Path]:
        return [self.layout.work_directory, self.layout.runtime_directory, CONTAINERD_RUNTIME_DIRECTORY]

    def _delete_pods_through_the_api(self) -> None:
        """Delete every pod while the kubelet runs, so CNI DEL removes the veths and addresses; the
        scheduler is stopped first so that controllers' replacement pods stay Pending."""
        kubelet = self._processes["kubelet"]
        if kubelet.exit_code() is not None:
            return
        scheduler = self._processes.get("kube-scheduler")
        if scheduler is not None:
            scheduler.stop(STOP_GRACE_PERIOD_SECONDS)
        try:
            self.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=0", "--force", "--wait=false")
        except subprocess.TimeoutExpired:
            return
        self._wait_until_gone(
            lambda: interfaces_on_bridge(self.layout.bridge_name), timeout_seconds=POD_DELETION_TIMEOUT_SECONDS
        )

    @staticmethod
    def _wait_until_gone(probe: Any, timeout_seconds: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_seconds
        while probe() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)

    def leftovers(self, *, include_host_state: bool = True) -> list[str]:
        """What this node left on the machine: processes, shims, mounts, cgroups, veths, the bridge and, with
        ``include_host_state``, iptables, nftables, sysctls and machine-wide folders."""
        found = [
            f"process {name} {pid}"
            for name, pid in self.process_ids.items()
            if Path(f"/proc/{pid}").exists() and _is_alive(pid)
        ]
        shim = self.layout.node_bin_directory / "containerd-shim-runc-v2"
        found += [f"shim process {pid}" for pid in processes_running(shim)]
        found += [f"mount {path}" for path in mounts_under(self._node_folders())]
        if self._snapshot is not None:
            found += [
                f"cgroup {path}"
                for path in self.cgroups
                if path.exists() and not self._snapshot.cgroup_directories.get(path, False)
            ]
        if self.layout.runtime_directory.exists():
            found.append(f"folder {self.layout.runtime_directory}")
        if Path(f"/sys/class/net/{self.layout.bridge_name}").exists():
            found.append(f"bridge {self.layout.bridge_name}")
            found += [f"veth {name}" for name in interfaces_on_bridge(self.layout.bridge_name)]
        if include_host_state and self._snapshot is not None:
            found += self._snapshot.differences()
        return found


def _is_alive(process_id: int) -> bool:
    try:
        status = Path(f"/proc/{process_id}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}
