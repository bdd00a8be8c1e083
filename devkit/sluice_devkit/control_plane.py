"""A real Kubernetes control plane run as local processes, for the operator's tests and local development.

The binaries (etcd, kube-apiserver, kube-controller-manager) come from ``scripts/control-plane/build.sh``,
which builds them from Go modules; no container runtime is involved. ``LocalControlPlane`` then:

1. generates a certificate authority, a serving certificate, client certificates (an administrator in
   ``system:masters`` and the controller manager's own identity) and a service-account signing key
   (``control_plane_certificates.py``);
2. starts etcd, kube-apiserver and kube-controller-manager on free ports bound to 127.0.0.1 only, each
   logging to a file in the work directory (``managed_process.py``);
3. writes a kubeconfig with absolute paths and waits until the API server's ``/readyz`` and the controller
   manager's ``/healthz`` answer and (by default) the ``default`` ServiceAccount exists, which shows that the
   controllers are running.

There is no kubelet and no scheduler: objects are stored, validated, authorised with RBAC, garbage
collected and reconciled by the built-in controllers (Deployment to ReplicaSet to Pod, namespace deletion,
service accounts, horizontal pod autoscaling), but no container ever runs.

Every process is stopped by its process id on ``stop()`` (SIGTERM, then SIGKILL after a grace period), when
the context manager exits, at interpreter exit, and, through the Linux parent-death signal, when the Python
process that started them dies.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from sluice_devkit.control_plane_certificates import (
    FRONT_PROXY_CLIENT_NAME,
    ControlPlaneCertificates,
    generate_control_plane_certificates,
    issue_leaf_certificate,
    write_private_file,
)
from sluice_devkit.managed_process import (
    LOOPBACK_ADDRESS,
    ControlPlaneStartError,
    ManagedProcess,
    free_loopback_ports,
    wait_for_answer,
)
from sluice_devkit.started_once import StartedOnce
from sluice_devkit.tool_processes import build_tool

__all__ = ["ControlPlaneStartError", "LocalControlPlane", "build_control_plane_binaries"]

DEFAULT_READY_TIMEOUT_SECONDS = 120.0
DEFAULT_STOP_GRACE_PERIOD_SECONDS = 10.0
DEFAULT_SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
DEFAULT_AUTOSCALER_SYNC_PERIOD_SECONDS = 3
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class LocalControlPlane(StartedOnce):
    """etcd, kube-apiserver and kube-controller-manager running on 127.0.0.1 for tests.

    Use as a context manager, or call ``start()`` and later ``stop()``::

        with LocalControlPlane(bin_directory, work_directory) as control_plane:
            os.environ["KUBECONFIG"] = str(control_plane.kubeconfig_path)
            ...

    ``work_directory`` receives the certificates, the etcd data, the kubeconfig files and one log file per
    process (``logs/<process>.log``). It should be empty or dedicated to this control plane.
    """

    def __init__(
        self,
        bin_directory: Path,
        work_directory: Path,
        *,
        ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS,
        stop_grace_period_seconds: float = DEFAULT_STOP_GRACE_PERIOD_SECONDS,
        service_cluster_ip_range: str = DEFAULT_SERVICE_CLUSTER_IP_RANGE,
        terminate_with_parent: bool = True,
        wait_for_default_service_account: bool = True,
        controllers: Sequence[str] = ("*",),
        node_address: ipaddress.IPv4Address | None = None,
        autoscaler_sync_period_seconds: int = DEFAULT_AUTOSCALER_SYNC_PERIOD_SECONDS,
    ) -> None:
        """Prepare (but do not start) a control plane.

        ``terminate_with_parent`` makes Linux kill the processes if the Python process dies without
        calling ``stop()``. Linux ties that signal to the starting *thread*: keep it True when the
        control plane is started from the main thread (as test fixtures are), and set it to False when
        starting from a short-lived thread.

        ``wait_for_default_service_account`` makes ``start()`` also wait until the controller manager has
        created ``default/default``: its controllers are then running, and Pods (which the ServiceAccount
        admission plugin rejects until their namespace's ServiceAccount exists) can be created.

        ``controllers`` is kube-controller-manager's ``--controllers`` list. The default ``*`` runs every
        on-by-default controller (deployment, replicaset, garbage collector, namespace, service account and
        token, horizontal pod autoscaler, job, statefulset, ...); a shorter list such as
        ``("deployment-controller", "replicaset-controller", ...)`` starts a little faster.

        ``node_address`` is for a local node (``local_node.py``): the API server then listens on that
        address (the node's bridge gateway) instead of 127.0.0.1, advertises it, keeps the default lease
        endpoint reconciler (so the ``kubernetes`` Service routes pods to it), authorises kubelets with the
        Node authorizer and reaches them with a client certificate of its own.

        ``autoscaler_sync_period_seconds`` is the HPA controller's sync period. Kubernetes' default is 15 s; 3 s
        here shows autoscaling within seconds in the demo and the tests (the algorithm is the same).
        """
        if autoscaler_sync_period_seconds < 1:
            raise ValueError(f"autoscaler_sync_period_seconds must be at least 1, not {autoscaler_sync_period_seconds}")
        self.bin_directory = Path(bin_directory).absolute()
        self.work_directory = Path(work_directory).absolute()
        self.ready_timeout_seconds = ready_timeout_seconds
        self.stop_grace_period_seconds = stop_grace_period_seconds
        self.service_cluster_ip_range = ipaddress.IPv4Network(service_cluster_ip_range)
        self.terminate_with_parent = terminate_with_parent
        self.wait_for_default_service_account = wait_for_default_service_account
        self.controllers = tuple(controllers)
        self.node_address = node_address
        self.autoscaler_sync_period_seconds = autoscaler_sync_period_seconds
        self.apiserver_address = str(node_address) if node_address is not None else LOOPBACK_ADDRESS
        self.certificate_directory = self.work_directory / "certificates"
        self.log_directory = self.work_directory / "logs"
        self.etcd_data_directory = self.work_directory / "etcd-data"
        self._kubeconfig_path = self.work_directory / "kubeconfig"
        self._controller_manager_kubeconfig_path = self.work_directory / "controller-manager.kubeconfig"
        self._processes: list[ManagedProcess] = []
        self._server_url: str | None = None
        self._certificates: ControlPlaneCertificates | None = None
        self.ready_after_seconds: float | None = None
        """Seconds from the start of ``start()`` until everything answered as ready."""

    @property
    def kubeconfig_path(self) -> Path:
        """Absolute path of a kubeconfig for an administrator (``system:masters``)."""
        return self._kubeconfig_path

    @property
    def server_url(self) -> str:
        """``https://127.0.0.1:<port>`` (or the node address) of the API server; known once ``start()`` has begun."""
        if self._server_url is None:
            raise RuntimeError("the control plane has not been started")
        return self._server_url

    @property
    def certificates(self) -> ControlPlaneCertificates:
        if self._certificates is None:
            raise RuntimeError("the control plane has not been started")
        return self._certificates

    @property
    def process_ids(self) -> dict[str, int]:
        """Process id of each process that was started, by name."""
        return {
            process.name: process_id for process in self._processes if (process_id := process.process_id) is not None
        }

    def log_path(self, process_name: str) -> Path:
        """Log file of ``etcd``, ``kube-apiserver`` or ``kube-controller-manager``."""
        return self.log_directory / f"{process_name}.log"

    def start(self) -> Self:
        """Start every process and wait until the API server and controller manager are ready.

        On failure everything already started is stopped and ``ControlPlaneStartError`` is raised with
        the tail of the failing process's log.
        """
        self._begin_start()
        started_at = time.monotonic()
        deadline = started_at + self.ready_timeout_seconds
        for binary_name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            if not os.access(self.bin_directory / binary_name, os.X_OK):
                raise ControlPlaneStartError(
                    f"{self.bin_directory / binary_name} is missing or not executable; "
                    "build it with scripts/control-plane/build.sh"
                )
        atexit.register(self.stop)
        try:
            self._start_processes(deadline)
        except BaseException:
            self.stop()
            raise
        self.ready_after_seconds = time.monotonic() - started_at
        return self

    def stop(self) -> None:
        """Stop every process, newest first, by process id. Safe to call more than once."""
        for process in reversed(self._processes):
            process.stop(self.stop_grace_period_seconds)
        atexit.unregister(self.stop)

    # Starting -----------------------------------------------------------------------------------------

    def _start_processes(self, deadline: float) -> None:
        for directory in (self.work_directory, self.log_directory, self.certificate_directory):
            directory.mkdir(parents=True, exist_ok=True)
        self.etcd_data_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        first_service_address = next(self.service_cluster_ip_range.hosts())
        certificates = generate_control_plane_certificates(
            self.certificate_directory, first_service_address=first_service_address, node_address=self.node_address
        )
        self._certificates = certificates
        (
            etcd_client_port,
            etcd_peer_port,
            apiserver_port,
            controller_manager_port,
        ) = free_loopback_ports(4)
        self._server_url = f"https://{self.apiserver_address}:{apiserver_port}"
        self.write_kubeconfig(
            self._kubeconfig_path,
            user_name="sluice-local-administrator",
            client_certificate=certificates.administrator_certificate,
            client_key=certificates.administrator_key,
        )
        self.write_kubeconfig(
            self._controller_manager_kubeconfig_path,
            user_name="system:kube-controller-manager",
            client_certificate=certificates.controller_manager_certificate,
            client_key=certificates.controller_manager_key,
        )

        etcd_url = f"http://{LOOPBACK_ADDRESS}:{etcd_client_port}"
        etcd_peer_url = f"http://{LOOPBACK_ADDRESS}:{etcd_peer_port}"
        etcd = self._launch(
            "etcd",
            [
                "--name=sluice-local",
                f"--data-dir={self.etcd_data_directory}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={etcd_peer_url}",
                f"--initial-advertise-peer-urls={etcd_peer_url}",
                f"--initial-cluster=sluice-local={etcd_peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        wait_for_answer(etcd, deadline, f"{etcd_url}/health", None, "etcd /health")

        apiserver = self._launch(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.apiserver_address}",
                f"--advertise-address={self.apiserver_address}",
                f"--secure-port={apiserver_port}",
                *self._node_apiserver_arguments(),
                f"--cert-dir={self.certificate_directory / 'kube-apiserver'}",
                f"--tls-cert-file={certificates.serving_certificate}",
                f"--tls-private-key-file={certificates.serving_key}",
                f"--client-ca-file={certificates.certificate_authority_certificate}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={certificates.service_account_public_key}",
                f"--service-account-signing-key-file={certificates.service_account_private_key}",
                f"--service-cluster-ip-range={self.service_cluster_ip_range}",
                "--allow-privileged=true",
                *self._aggregation_layer_arguments(),
            ],
        )
        apiserver_context = self._client_ssl_context()
        wait_for_answer(apiserver, deadline, f"{self._server_url}/readyz", apiserver_context, "kube-apiserver /readyz")

        controller_manager = self._launch(
            "kube-controller-manager",
            [
                f"--kubeconfig={self._controller_manager_kubeconfig_path}",
                f"--authentication-kubeconfig={self._controller_manager_kubeconfig_path}",
                f"--authorization-kubeconfig={self._controller_manager_kubeconfig_path}",
                # Trust --client-ca-file alone: nothing reaches the controller manager through the front
                # proxy, and without this it reads the request-header CA from
                # kube-system/extension-apiserver-authentication (and logs errors while that is missing).
                "--authentication-skip-lookup=true",
                "--leader-elect=false",
                f"--bind-address={LOOPBACK_ADDRESS}",
                f"--secure-port={controller_manager_port}",
                f"--cert-dir={self.certificate_directory / 'kube-controller-manager'}",
                f"--tls-cert-file={certificates.serving_certificate}",
                f"--tls-private-key-file={certificates.serving_key}",
                f"--client-ca-file={certificates.certificate_authority_certificate}",
                f"--root-ca-file={certificates.certificate_authority_certificate}",
                f"--service-account-private-key-file={certificates.service_account_private_key}",
                f"--cluster-signing-cert-file={certificates.certificate_authority_certificate}",
                f"--cluster-signing-key-file={certificates.certificate_authority_key}",
                "--use-service-account-credentials=true",
                f"--controllers={','.join(self.controllers)}",
                f"--horizontal-pod-autoscaler-sync-period={self.autoscaler_sync_period_seconds}s",
            ],
        )
        wait_for_answer(
            controller_manager,
            deadline,
            f"https://{LOOPBACK_ADDRESS}:{controller_manager_port}/healthz",
            apiserver_context,
            "kube-controller-manager /healthz",
        )
        if self.wait_for_default_service_account:
            wait_for_answer(
                controller_manager,
                deadline,
                f"{self._server_url}/api/v1/namespaces/default/serviceaccounts/default",
                apiserver_context,
                "the default ServiceAccount (created by the controller manager's serviceaccount controller)",
            )

    def _aggregation_layer_arguments(self) -> list[str]:
        """The front proxy, so that aggregated API servers (an APIService such as KEDA's
        ``v1beta1.external.metrics.k8s.io``) can be registered and trust the callers kube-apiserver names.

        With a node, ``--enable-aggregator-routing`` makes kube-apiserver dial an endpoint address of the
        APIService's Service (on the bridge) rather than its cluster IP. Without one there is no valid
        endpoint address (loopback is refused in Endpoints), and an APIService reaches a local server
        through an ``ExternalName`` Service instead (``keda.py``), which only the default routing resolves.
        """
        certificates = self.certificates
        return [
            f"--requestheader-client-ca-file={certificates.front_proxy_certificate_authority_certificate}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT_NAME}",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--proxy-client-cert-file={certificates.front_proxy_client_certificate}",
            f"--proxy-client-key-file={certificates.front_proxy_client_key}",
            f"--enable-aggregator-routing={'true' if self.node_address is not None else 'false'}",
        ]

    def _node_apiserver_arguments(self) -> list[str]:
        """Flags that differ when a local node joins: endpoints, authorisation, reaching kubelets."""
        if self.node_address is None:
            # A loopback advertise address is rejected by the endpoint reconciler (logged every few seconds).
            return ["--endpoint-reconciler-type=none", "--authorization-mode=RBAC"]
        certificate, key = issue_leaf_certificate(
            self.certificates,
            self.certificate_directory,
            name="apiserver-kubelet-client",
            common_name="kube-apiserver-kubelet-client",
            organization="system:masters",
        )
        return [
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={certificate}",
            f"--kubelet-client-key={key}",
            f"--kubelet-certificate-authority={self.certificates.certificate_authority_certificate}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _launch(self, name: str, arguments: Sequence[str]) -> ManagedProcess:
        process = ManagedProcess(name, [str(self.bin_directory / name), *arguments], self.log_path(name))
        self._processes.append(process)
        process.start(terminate_with_parent=self.terminate_with_parent)
        return process

    def _client_ssl_context(self) -> ssl.SSLContext:
        certificates = self.certificates
        context = ssl.create_default_context(cafile=str(certificates.certificate_authority_certificate))
        context.load_cert_chain(str(certificates.administrator_certificate), str(certificates.administrator_key))
        return context

    def write_kubeconfig(self, path: Path, *, user_name: str, client_certificate: Path, client_key: Path) -> None:
        """Write a kubeconfig (JSON, which every YAML reader accepts) with absolute paths only."""
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sluice-local",
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority": str(self.certificates.certificate_authority_certificate),
                    },
                }
            ],
            "users": [
                {
                    "name": user_name,
                    "user": {
                        "client-certificate": str(client_certificate.absolute()),
                        "client-key": str(client_key.absolute()),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "sluice-local",
                    "context": {"cluster": "sluice-local", "user": user_name, "namespace": "default"},
                }
            ],
            "current-context": "sluice-local",
            "preferences": {},
        }
        write_private_file(path, (json.dumps(kubeconfig, indent=2) + "\n").encode())


def build_control_plane_binaries(build_script: Path, *, timeout_seconds: float | None = None) -> Path:
    """Run ``scripts/control-plane/build.sh`` (instant once built) and return the bin directory it prints.

    A cold build takes tens of minutes; its progress goes to this process's standard error.
    """
    return build_tool(build_script, timeout_seconds=timeout_seconds)
