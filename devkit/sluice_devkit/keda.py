"""KEDA (operator and external metrics API server) run as local processes against the local control plane.

The binaries and CRDs come from ``scripts/keda/build.sh`` (built from KEDA's Go module, no images).
``LocalKeda`` then, beside a started ``LocalControlPlane`` (whose API server has the aggregation layer
configured):

1. issues KEDA a client certificate and a serving certificate from the control plane's CA (the serving one
   names ``keda-metrics-apiserver.keda.svc``, the name kube-apiserver verifies, and secures the gRPC link
   between the adapter and the operator too) and writes a kubeconfig for it;
2. applies KEDA's CRDs (server-side) and waits until they are Established;
3. starts ``keda`` (the operator: ScaledObjects → HPAs, scalers, the gRPC metrics service) with every
   listener on 127.0.0.1, then ``keda-adapter`` (the ``external.metrics.k8s.io`` API server) on 127.0.0.1,
   or on the node's bridge address when a local node runs;
4. registers the APIService ``v1beta1.external.metrics.k8s.io`` and the Service it names, and waits until
   the APIService is ``Available``. Loopback addresses are refused in Endpoints, so without a node the
   Service is an ``ExternalName`` for ``localhost`` (kube-apiserver's default routing resolves it); with a
   node it is a selector-less Service with a manual EndpointSlice on the bridge address, dialled directly
   (``--enable-aggregator-routing``).

``stop()`` deletes the APIService first (an unavailable aggregated API breaks discovery, and with it
namespace deletion, for everyone on the cluster), then stops both processes by process id.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ipaddress
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from sluice_devkit.control_plane import LocalControlPlane
from sluice_devkit.control_plane_certificates import issue_leaf_certificate
from sluice_devkit.kubectl import Kubectl
from sluice_devkit.managed_process import LOOPBACK_ADDRESS, ControlPlaneStartError, ManagedProcess, free_loopback_ports
from sluice_devkit.platform_errors import PlatformError
from sluice_devkit.started_once import StartedOnce
from sluice_devkit.tool_processes import answers_ok, build_tool, wait_until_ready

__all__ = ["KEDA_NAMESPACE", "METRICS_API_SERVICE", "KedaStartError", "LocalKeda", "build_keda_binaries"]

KEDA_NAMESPACE = "keda"
METRICS_SERVER_SERVICE = "keda-metrics-apiserver"
METRICS_API_SERVICE = "v1beta1.external.metrics.k8s.io"
DEFAULT_READY_TIMEOUT_SECONDS = 120.0
STOP_GRACE_PERIOD_SECONDS = 10.0


class KedaStartError(ControlPlaneStartError):
    """A KEDA process exited, or KEDA's APIService did not become Available in time, while starting."""


class LocalKeda(StartedOnce):
    """KEDA's operator and metrics adapter for a running ``LocalControlPlane``; a context manager::

    with LocalKeda(keda_bin, control_plane, work_directory) as keda:
        ...  # ScaledObjects work; `kubectl get apiservice v1beta1.external.metrics.k8s.io` is Available
    """

    def __init__(
        self,
        bin_directory: Path,
        control_plane: LocalControlPlane,
        work_directory: Path,
        *,
        crd_directory: Path | None = None,
        ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS,
        terminate_with_parent: bool = True,
    ) -> None:
        """``crd_directory`` defaults to ``<bin_directory>/../crds`` (where build.sh puts them)."""
        self.bin_directory = Path(bin_directory).absolute()
        self.crd_directory = (
            Path(crd_directory) if crd_directory is not None else self.bin_directory.parent / "crds"
        ).absolute()
        self.control_plane = control_plane
        self.work_directory = Path(work_directory).absolute()
        self.ready_timeout_seconds = ready_timeout_seconds
        self.terminate_with_parent = terminate_with_parent
        self.certificate_directory = self.work_directory / "certs"
        self.log_directory = self.work_directory / "logs"
        self.kubeconfig_path = self.work_directory / "keda.kubeconfig"
        node_address = control_plane.node_address
        self.adapter_address = str(node_address) if node_address is not None else LOOPBACK_ADDRESS
        self._processes: list[ManagedProcess] = []
        self._registered = False
        self.ready_after_seconds: float | None = None
        """Seconds from the start of ``start()`` until the APIService was Available."""

    @property
    def kubectl(self) -> Kubectl:
        """kubectl as the control plane's administrator."""
        return Kubectl(self.control_plane.bin_directory / "kubectl", self.control_plane.kubeconfig_path)

    def log_path(self, process_name: str) -> Path:
        """Log file of ``keda`` (the operator) or ``keda-adapter``."""
        return self.log_directory / f"{process_name}.log"

    def start(self) -> Self:
        """Start KEDA and wait until its APIService is Available; on failure stop what started."""
        self._begin_start()
        started_at = time.monotonic()
        for binary_name in ("keda", "keda-adapter"):
            if not os.access(self.bin_directory / binary_name, os.X_OK):
                raise KedaStartError(
                    f"{self.bin_directory / binary_name} is missing or not executable; "
                    "build it with scripts/keda/build.sh"
                )
        atexit.register(self.stop)
        try:
            self._start(started_at + self.ready_timeout_seconds)
        except BaseException:
            self.stop()
            raise
        self.ready_after_seconds = time.monotonic() - started_at
        return self

    def stop(self) -> None:
        """Unregister the APIService, then stop both processes by process id. Safe to call more than once."""
        if self._registered:
            self._registered = False
            with contextlib.suppress(PlatformError):  # the control plane may already be gone
                self.kubectl.run("delete", "apiservice", METRICS_API_SERVICE, "--ignore-not-found", "--wait=false")
        for process in reversed(self._processes):
            process.stop(STOP_GRACE_PERIOD_SECONDS)
        atexit.unregister(self.stop)

    # Starting -----------------------------------------------------------------------------------------

    def _start(self, deadline: float) -> None:
        for directory in (self.work_directory, self.log_directory, self.certificate_directory):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_certificates()
        self._apply_crds(deadline)
        self.kubectl.apply(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KEDA_NAMESPACE}}], namespace=KEDA_NAMESPACE
        )

        metrics_port, probe_port, grpc_port, adapter_port, adapter_metrics_port = free_loopback_ports(5)
        environment = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig_path),
            "WATCH_NAMESPACE": "",
            "POD_NAMESPACE": KEDA_NAMESPACE,
            "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
        }
        operator = self._launch(
            "keda",
            [
                f"--metrics-bind-address={LOOPBACK_ADDRESS}:{metrics_port}",
                f"--health-probe-bind-address={LOOPBACK_ADDRESS}:{probe_port}",
                f"--metrics-service-bind-address={LOOPBACK_ADDRESS}:{grpc_port}",
                f"--cert-dir={self.certificate_directory}",
                f"--ca-dir={self.certificate_directory}",
                "--enable-cert-rotation=false",
                "--leader-elect=false",
                "--zap-log-level=info",
                "--zap-encoder=console",
            ],
            environment,
        )
        self._wait(
            deadline, operator, lambda: answers_ok(f"http://{LOOPBACK_ADDRESS}:{probe_port}/readyz"), "keda /readyz"
        )

        adapter = self._launch(
            "keda-adapter",
            [
                f"--bind-address={self.adapter_address}",
                f"--secure-port={adapter_port}",
                f"--cert-dir={self.certificate_directory}",
                f"--tls-cert-file={self.certificate_directory / 'tls.crt'}",
                f"--tls-private-key-file={self.certificate_directory / 'tls.key'}",
                f"--authentication-kubeconfig={self.kubeconfig_path}",
                f"--authorization-kubeconfig={self.kubeconfig_path}",
                f"--lister-kubeconfig={self.kubeconfig_path}",
                f"--metrics-service-address={LOOPBACK_ADDRESS}:{grpc_port}",
                # Its Prometheus endpoint: build.sh patches the adapter to bind it to 127.0.0.1.
                f"--port={adapter_metrics_port}",
                "--zap-log-level=info",
                "--zap-encoder=console",
            ],
            environment,
        )
        self._register_api_service(adapter_port)
        self._wait(deadline, adapter, self._api_service_available, f"APIService {METRICS_API_SERVICE} Available")

    def _write_certificates(self) -> None:
        control_plane = self.control_plane
        addresses = [ipaddress.IPv4Address(self.adapter_address)] if self.adapter_address != LOOPBACK_ADDRESS else []
        issue_leaf_certificate(
            control_plane.certificates,
            self.certificate_directory,
            name="tls",
            common_name=f"{METRICS_SERVER_SERVICE}.{KEDA_NAMESPACE}.svc",
            addresses=addresses,
            dns_names=[
                f"{METRICS_SERVER_SERVICE}.{KEDA_NAMESPACE}.svc",
                f"keda-operator.{KEDA_NAMESPACE}.svc",
            ],
        )
        shutil.copyfile(
            control_plane.certificates.certificate_authority_certificate, self.certificate_directory / "ca.crt"
        )
        client_certificate, client_key = issue_leaf_certificate(
            control_plane.certificates,
            self.certificate_directory,
            name="client",
            common_name="keda-operator",
            # The local KEDA acts as the cluster's administrator (its chart's RBAC is not installed here).
            organization="system:masters",
        )
        control_plane.write_kubeconfig(
            self.kubeconfig_path,
            user_name="keda-operator",
            client_certificate=client_certificate,
            client_key=client_key,
        )

    def _apply_crds(self, deadline: float) -> None:
        if not (self.crd_directory / "keda.sh_scaledobjects.yaml").is_file():
            raise KedaStartError(f"no KEDA CRDs in {self.crd_directory}; build them with scripts/keda/build.sh")
        self.kubectl.run("apply", "--server-side", "--field-manager=sluice-local-keda", "-f", str(self.crd_directory))
        names = [
            f"{path.name.split('_', 1)[1].removesuffix('.yaml')}.{path.name.split('_', 1)[0]}"
            for path in sorted(self.crd_directory.glob("*.yaml"))
        ]
        for name in names:
            self.kubectl.run(
                "wait", "--for=condition=Established", f"--timeout={_seconds_left(deadline)}s", f"crd/{name}"
            )

    def _register_api_service(self, adapter_port: int) -> None:
        port = {"name": "https", "port": adapter_port, "protocol": "TCP", "targetPort": adapter_port}
        service: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": METRICS_SERVER_SERVICE, "namespace": KEDA_NAMESPACE},
        }
        manifests: list[dict[str, Any]] = [service]
        if self.control_plane.node_address is None:
            service["spec"] = {"type": "ExternalName", "externalName": "localhost", "ports": [port]}
        else:
            service["spec"] = {"type": "ClusterIP", "ports": [port]}
            manifests.append(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": METRICS_SERVER_SERVICE,
                        "namespace": KEDA_NAMESPACE,
                        "labels": {"kubernetes.io/service-name": METRICS_SERVER_SERVICE},
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [self.adapter_address], "conditions": {"ready": True}}],
                    "ports": [{"name": "https", "port": adapter_port, "protocol": "TCP"}],
                }
            )
        self.kubectl.apply(manifests, namespace=KEDA_NAMESPACE)
        ca_bundle = _base64(self.control_plane.certificates.certificate_authority_certificate.read_bytes())
        api_service = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": METRICS_API_SERVICE},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "caBundle": ca_bundle,
                "service": {"name": METRICS_SERVER_SERVICE, "namespace": KEDA_NAMESPACE, "port": adapter_port},
            },
        }
        self._registered = True
        self.kubectl.apply([api_service], namespace=KEDA_NAMESPACE)

    def api_service_conditions(self) -> dict[str, dict[str, Any]]:
        """The APIService's conditions by type (``Available`` with its reason and message)."""
        body = self.kubectl.get_json("apiservice", METRICS_API_SERVICE)
        return {condition["type"]: condition for condition in (body.get("status") or {}).get("conditions") or []}

    def _api_service_available(self) -> bool:
        try:
            return self.api_service_conditions().get("Available", {}).get("status") == "True"
        except PlatformError:
            return False

    def _launch(self, name: str, arguments: list[str], environment: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, [str(self.bin_directory / name), *arguments], self.log_path(name))
        self._processes.append(process)
        process.start(terminate_with_parent=self.terminate_with_parent, environment=environment)
        return process

    def _wait(self, deadline: float, process: ManagedProcess, ready: Callable[[], bool], description: str) -> None:
        def details() -> str:
            if not description.startswith("APIService"):
                return ""
            with_conditions = self.api_service_conditions() if self._registered else {}
            return f"\nAPIService conditions: {json.dumps(with_conditions)}"

        wait_until_ready(deadline, process, ready, description, error_type=KedaStartError, details=details)


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _seconds_left(deadline: float) -> int:
    return max(1, int(deadline - time.monotonic()))


def build_keda_binaries(build_script: Path, *, timeout_seconds: float | None = None) -> Path:
    """Run ``scripts/keda/build.sh`` (instant once built) and return the bin directory it prints."""
    return build_tool(build_script, timeout_seconds=timeout_seconds)
