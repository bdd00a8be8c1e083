"""The configuration files of a local node: containerd's, the CNI network's, the kubelet's, kube-proxy's.

Pure functions from a ``NodeLayout`` (where everything lives, which addresses and ports it uses) to file
contents, so what each setting is for is written once, next to it. ``local_node.py`` writes them and starts
the processes. The settings follow what a node needs on these machines (docs/platform.md, "The real
node"): cgroup v1 with the cgroupfs driver, no CAP_SYS_RESOURCE (so nothing lowers an oom_score_adj), no
systemd, no swap, nothing pulled, and nothing listening outside 127.0.0.1 and the node's own bridge.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_BRIDGE_NAME",
    "DEFAULT_POD_SUBNET",
    "NodeLayout",
    "cni_network_config",
    "containerd_config",
    "kube_proxy_config",
    "kubelet_config",
]

DEFAULT_BRIDGE_NAME = "rn0"
DEFAULT_POD_SUBNET = "10.244.0.0/24"
CNI_NETWORK_NAME = "sluice-node"


@dataclass(frozen=True)
class NodeLayout:
    """Folders, binaries, addresses and ports of one local node."""

    work_directory: Path
    node_bin_directory: Path
    kubernetes_bin_directory: Path
    node_name: str
    bridge_name: str
    pod_subnet: ipaddress.IPv4Network
    cgroup_root: str
    pause_image: str
    kubelet_port: int
    kubelet_healthz_port: int
    proxy_healthz_port: int
    proxy_metrics_port: int
    scheduler_port: int

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's own address: node IP, kubelet and API server address, PostgreSQL for pods."""
        return next(self.pod_subnet.hosts())

    @property
    def cni_bin_directory(self) -> Path:
        return self.node_bin_directory / "cni"

    @property
    def cni_config_directory(self) -> Path:
        return self.work_directory / "cni" / "net.d"

    @property
    def cni_ipam_directory(self) -> Path:
        return self.work_directory / "cni" / "networks"

    @property
    def containerd_root(self) -> Path:
        return self.work_directory / "containerd" / "root"

    @property
    def runtime_directory(self) -> Path:
        """Short, under /run: unix socket paths (containerd's, the shims') must stay under 104 bytes, which a
        work folder like pytest's temporary ones exceeds. Removed when the node stops."""
        return Path("/run") / f"sluice-node-{self.bridge_name}"

    @property
    def containerd_state(self) -> Path:
        return self.runtime_directory / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        """Under the short runtime folder too: the kubelet makes unix sockets in it (pod-resources,
        device-plugins, plugins_registry), and pytest-xdist's longer temporary folders pushed them past the
        limit ("bind: invalid argument"). Pod logs and container layers stay in the work folder."""
        return self.runtime_directory / "kubelet"

    @property
    def pod_logs_directory(self) -> Path:
        return self.work_directory / "pod-logs"

    @property
    def certificate_directory(self) -> Path:
        return self.work_directory / "certificates"

    @property
    def log_directory(self) -> Path:
        return self.work_directory / "logs"


def _toml_string(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def containerd_config(layout: NodeLayout) -> str:
    """containerd 2.x configuration (version 3): CRI with runc, overlayfs, the local pause image, CNI."""
    runtime = "plugins.'io.containerd.cri.v1.runtime'"
    runc = f"{runtime}.containerd.runtimes.runc"
    return f"""# Written by sluice_devkit.node_config: containerd for one local Kubernetes node.
version = 3
root = {_toml_string(layout.containerd_root)}
state = {_toml_string(layout.containerd_state)}

[grpc]
  address = {_toml_string(layout.containerd_socket)}

[ttrpc]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  # Not /opt/containerd: everything of this node stays in its work folder.
  path = {_toml_string(layout.work_directory / "containerd" / "opt")}

[plugins.'io.containerd.nri.v1.nri']
  # NRI would listen on /var/run/nri/nri.sock; nothing here uses it.
  disable = true

[plugins.'io.containerd.grpc.v1.cri']
  # kubectl exec/attach/port-forward streams: loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  # Built from pause.c by scripts/node/build.sh and imported before the kubelet starts: never pulled.
  sandbox = {_toml_string(layout.pause_image)}

[{runtime}]
  # Without CAP_SYS_RESOURCE no process may lower its oom_score_adj: keep containers' at or above ours.
  restrict_oom_score_adj = true
  # Pod network namespaces are mounted under the state folder, not /var/run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true

[{runtime}.containerd]
  default_runtime_name = "runc"

[{runc}]
  runtime_type = "io.containerd.runc.v2"

[{runc}.options]
  BinaryName = {_toml_string(layout.node_bin_directory / "runc")}
  # No systemd on these machines: cgroupfs, as the kubelet's cgroupDriver says.
  SystemdCgroup = false

[{runtime}.cni]
  bin_dirs = [{_toml_string(layout.cni_bin_directory)}]
  conf_dir = {_toml_string(layout.cni_config_directory)}
  max_conf_num = 1
"""


def cni_network_config(layout: NodeLayout) -> dict[str, Any]:
    """The CNI network: the node's existing bridge as gateway, host-local addresses, portmap."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.bridge_name,
                "isGateway": True,
                # Nothing leaves the machine: no masquerading (and the node drops forwarding off the bridge).
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(layout.cni_ipam_directory),
                    "ranges": [[{"subnet": str(layout.pod_subnet), "gateway": str(layout.gateway)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(
    layout: NodeLayout, *, client_ca_file: Path, serving_certificate: Path, serving_key: Path
) -> dict[str, Any]:
    """KubeletConfiguration (JSON, which the kubelet reads as YAML)."""
    loose_threshold = "1%"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # The kubelet refuses a loopback node IP: it serves on the bridge gateway.
        "address": str(layout.gateway),
        "port": layout.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": layout.kubelet_healthz_port,
        "tlsCertFile": str(serving_certificate),
        "tlsPrivateKeyFile": str(serving_key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        # cgroup v1 (hybrid) without systemd; 1.35+ refuses cgroup v1 unless told otherwise.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "cgroupRoot": layout.cgroup_root,
        "failSwapOn": False,
        # No CAP_SYS_RESOURCE: the default -999 cannot be applied.
        "oomScoreAdj": 0,
        # An image imported under one name and pulled under another fails with ErrImageNeverPull otherwise.
        "imagePullCredentialsVerificationPolicy": "NeverVerify",
        "serializeImagePulls": False,
        # A shared development disk: never evict pods or delete imported images because it is fairly full.
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": loose_threshold,
            "nodefs.inodesFree": loose_threshold,
            "imagefs.available": loose_threshold,
            "imagefs.inodesFree": loose_threshold,
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "podLogsDir": str(layout.pod_logs_directory),
        "resolvConf": "/etc/resolv.conf",
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "maxPods": 110,
    }


def kube_proxy_config(layout: NodeLayout, *, kubeconfig: Path) -> dict[str, Any]:
    """KubeProxyConfiguration: iptables mode, Services reachable from pods and the node only."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": layout.node_name,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{layout.proxy_healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{layout.proxy_metrics_port}",
        "clusterCIDR": str(layout.pod_subnet),
        "nodePortAddresses": [f"{layout.gateway}/32"],
        # Leaves route_localnet alone (NodePorts on 127.0.0.1 would need it).
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        # Zero: leave the machine's conntrack sysctls as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
        "oomScoreAdj": 0,
    }
