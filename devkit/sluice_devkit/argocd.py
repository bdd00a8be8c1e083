"""Argo CD (application controller and repo server, with Redis) run as local processes against a local cluster.

The binary and CRDs come from ``scripts/argocd/build.sh`` (built from Argo CD's Go module, no images); Redis
and git are Debian's. ``LocalArgoCD`` then, beside a started ``LocalControlPlane``:

1. issues Argo CD a client certificate from the control plane's CA and writes a kubeconfig for it;
2. applies Argo CD's CRDs (server-side) and waits until they are Established;
3. creates the ``argocd`` namespace with what Argo CD's own install manifests put there: ``argocd-cm``,
   ``argocd-rbac-cm``, ``argocd-secret`` and the ``default`` AppProject; then merges each configuration patch
   (for Sluice: ``deploy/argocd/argocd-cm.yaml``) into ``argocd-cm`` the documented way
   (``kubectl -n argocd patch configmap argocd-cm --type merge --patch-file ...``);
4. starts ``redis-server`` on a free 127.0.0.1 port (no persistence), ``argocd-repo-server`` (gRPC without
   TLS and metrics on 127.0.0.1; ``helm`` and ``git`` on its PATH) and ``argocd-application-controller``
   (metrics on 127.0.0.1: build.sh patches the bind address), and waits for their health endpoints.

Argo CD "core" style: no API server, no UI, no Dex; Applications are objects created with kubectl. The in-cluster
destination ``https://kubernetes.default.svc`` maps to the controller's own kubeconfig: Argo CD v3.2's
``Cluster.RawRestConfig`` reads ``$KUBECONFIG`` instead of the pod's service account when
``ARGOCD_FAKE_IN_CLUSTER=true`` (pkg/apis/application/v1alpha1/types.go).

``stop()`` stops the three processes by process id (the objects stay in the cluster, which the caller owns).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from sluice_devkit.control_plane import LocalControlPlane
from sluice_devkit.control_plane_certificates import issue_leaf_certificate
from sluice_devkit.kubectl import Kubectl
from sluice_devkit.managed_process import LOOPBACK_ADDRESS, ControlPlaneStartError, ManagedProcess, free_loopback_ports
from sluice_devkit.platform_errors import PlatformError
from sluice_devkit.started_once import StartedOnce
from sluice_devkit.tool_processes import answers_ok, build_tool, log_tail, wait_until_ready

__all__ = [
    "ARGOCD_NAMESPACE",
    "IN_CLUSTER_SERVER",
    "ArgoCDStartError",
    "LocalArgoCD",
    "build_argocd_binaries",
]

ARGOCD_NAMESPACE = "argocd"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
"""The destination of an Application deployed to the cluster Argo CD runs in."""
DEFAULT_READY_TIMEOUT_SECONDS = 120.0
DEFAULT_APP_RESYNC_SECONDS = 10
STOP_GRACE_PERIOD_SECONDS = 10.0
POLL_SECONDS = 0.5
PART_OF_ARGOCD = {"app.kubernetes.io/part-of": "argocd"}
"""Argo CD's settings manager only sees ConfigMaps and Secrets with this label."""


class ArgoCDStartError(ControlPlaneStartError):
    """An Argo CD process (or Redis) exited, or did not answer its health check in time, while starting."""


class LocalArgoCD(StartedOnce):
    """Argo CD's application controller and repo server for a running ``LocalControlPlane``; a context manager::

    with LocalArgoCD(argocd_bin, control_plane, work_directory, tool_directories=[helm_dir]) as argocd:
        ...  # kubectl apply an Application in the argocd namespace; Argo CD syncs it
    """

    def __init__(
        self,
        bin_directory: Path,
        control_plane: LocalControlPlane,
        work_directory: Path,
        *,
        tool_directories: Sequence[Path] = (),
        configuration_patches: Sequence[Path] = (),
        crd_directory: Path | None = None,
        app_resync_seconds: int = DEFAULT_APP_RESYNC_SECONDS,
        ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS,
        terminate_with_parent: bool = True,
    ) -> None:
        """``tool_directories`` go first on the repo server's PATH (it runs ``helm``; ``git`` comes from the
        system). ``configuration_patches`` are merged into ``argocd-cm`` in order. ``crd_directory`` defaults to
        ``<bin_directory>/../crds`` (where build.sh puts them). ``app_resync_seconds``: how often every
        Application is compared with Git again (Argo CD's default is 180 s)."""
        self.bin_directory = Path(bin_directory).absolute()
        self.crd_directory = (
            Path(crd_directory) if crd_directory is not None else self.bin_directory.parent / "crds"
        ).absolute()
        self.control_plane = control_plane
        self.work_directory = Path(work_directory).absolute()
        self.tool_directories = [Path(directory).absolute() for directory in tool_directories]
        self.configuration_patches = [Path(path).absolute() for path in configuration_patches]
        self.app_resync_seconds = app_resync_seconds
        self.ready_timeout_seconds = ready_timeout_seconds
        self.terminate_with_parent = terminate_with_parent
        self.certificate_directory = self.work_directory / "certs"
        self.log_directory = self.work_directory / "logs"
        self.kubeconfig_path = self.work_directory / "argocd.kubeconfig"
        self._processes: list[ManagedProcess] = []
        self.ready_after_seconds: float | None = None
        """Seconds from the start of ``start()`` until the controller answered its health check."""

    @property
    def kubectl(self) -> Kubectl:
        """kubectl as the control plane's administrator."""
        return Kubectl(self.control_plane.bin_directory / "kubectl", self.control_plane.kubeconfig_path)

    def log_path(self, process_name: str) -> Path:
        """Log file of ``redis-server``, ``argocd-repo-server`` or ``argocd-application-controller``."""
        return self.log_directory / f"{process_name}.log"

    def log_tail(self, process_name: str = "argocd-application-controller", line_count: int = 40) -> str:
        """The last lines of a process's log (for diagnostics when a wait times out)."""
        return log_tail(self.log_path(process_name), line_count)

    def start(self) -> Self:
        """Start Redis, the repo server and the controller; on failure stop what started."""
        self._begin_start()
        started_at = time.monotonic()
        for binary_name in ("argocd-application-controller", "argocd-repo-server"):
            if not os.access(self.bin_directory / binary_name, os.X_OK):
                raise ArgoCDStartError(
                    f"{self.bin_directory / binary_name} is missing or not executable; "
                    "build it with scripts/argocd/build.sh"
                )
        for program in ("redis-server", "git"):
            if shutil.which(program) is None:
                raise ArgoCDStartError(f"{program} is not on PATH; install Debian's package (./dev test does)")
        atexit.register(self.stop)
        try:
            self._start(started_at + self.ready_timeout_seconds)
        except BaseException:
            self.stop()
            raise
        self.ready_after_seconds = time.monotonic() - started_at
        return self

    def stop(self) -> None:
        """Stop the controller, the repo server and Redis by process id. Safe to call more than once."""
        for process in reversed(self._processes):
            process.stop(STOP_GRACE_PERIOD_SECONDS)
        atexit.unregister(self.stop)

    # Starting -----------------------------------------------------------------------------------------

    def _start(self, deadline: float) -> None:
        temporary_directory = self.work_directory / "tmp"
        for directory in (self.work_directory, self.log_directory, self.certificate_directory, temporary_directory):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_kubeconfig()
        self._apply_crds(deadline)
        self._apply_settings()

        redis_port, repo_port, repo_metrics_port, controller_metrics_port = free_loopback_ports(4)
        redis = self._launch(
            "redis-server",
            shutil.which("redis-server") or "redis-server",
            [
                "--bind",
                LOOPBACK_ADDRESS,
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.work_directory),
            ],
            dict(os.environ),
        )
        self._wait(deadline, redis, lambda: _redis_answers(redis_port), "redis-server PING")

        search_path = os.pathsep.join([*map(str, self.tool_directories), os.environ.get("PATH", "/usr/bin:/bin")])
        environment = {
            **os.environ,
            "PATH": search_path,
            "KUBECONFIG": str(self.kubeconfig_path),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_CONTROLLER_SHARD": "0",
            "TMPDIR": str(temporary_directory),
            "HOME": str(self.work_directory),
        }
        redis_address = f"{LOOPBACK_ADDRESS}:{redis_port}"
        repo_server = self._launch(
            "argocd-repo-server",
            str(self.bin_directory / "argocd-repo-server"),
            [
                f"--address={LOOPBACK_ADDRESS}",
                f"--port={repo_port}",
                f"--metrics-address={LOOPBACK_ADDRESS}",
                f"--metrics-port={repo_metrics_port}",
                "--disable-tls",
                f"--redis={redis_address}",
                "--logformat=text",
                "--loglevel=info",
            ],
            environment,
        )
        self._wait(
            deadline,
            repo_server,
            lambda: answers_ok(f"http://{LOOPBACK_ADDRESS}:{repo_metrics_port}/healthz"),
            "argocd-repo-server /healthz",
        )
        controller = self._launch(
            "argocd-application-controller",
            str(self.bin_directory / "argocd-application-controller"),
            [
                f"--kubeconfig={self.kubeconfig_path}",
                f"--namespace={ARGOCD_NAMESPACE}",
                f"--repo-server={LOOPBACK_ADDRESS}:{repo_port}",
                "--repo-server-plaintext",
                f"--redis={redis_address}",
                f"--metrics-port={controller_metrics_port}",
                f"--app-resync={self.app_resync_seconds}",
                "--app-resync-jitter=0",
                # Each resource's health in the Application's status too (Argo CD 3 keeps it only in Redis by
                # default, for the UI), so `kubectl get application -o yaml` shows it.
                "--persist-resource-health",
                "--status-processors=4",
                "--operation-processors=2",
                "--logformat=text",
                "--loglevel=info",
            ],
            environment,
        )
        self._wait(
            deadline,
            controller,
            lambda: answers_ok(f"http://{LOOPBACK_ADDRESS}:{controller_metrics_port}/healthz"),
            "argocd-application-controller /healthz",
        )

    def _write_kubeconfig(self) -> None:
        client_certificate, client_key = issue_leaf_certificate(
            self.control_plane.certificates,
            self.certificate_directory,
            name="client",
            common_name="argocd-application-controller",
            # Argo CD's install manifests bind the controller to cluster-admin; here the same, by group.
            organization="system:masters",
        )
        self.control_plane.write_kubeconfig(
            self.kubeconfig_path,
            user_name="argocd-application-controller",
            client_certificate=client_certificate,
            client_key=client_key,
        )

    def _apply_crds(self, deadline: float) -> None:
        if not (self.crd_directory / "application-crd.yaml").is_file():
            raise ArgoCDStartError(f"no Argo CD CRDs in {self.crd_directory}; build them with scripts/argocd/build.sh")
        self.kubectl.run("apply", "--server-side", "--field-manager=sluice-local-argocd", "-f", str(self.crd_directory))
        for name in ("applications.argoproj.io", "appprojects.argoproj.io", "applicationsets.argoproj.io"):
            # Polled rather than `kubectl wait`, which fails while a new CRD has no conditions at all yet.
            while not self._crd_established(name):
                if time.monotonic() > deadline:
                    raise ArgoCDStartError(f"the CRD {name} was not Established before the start timeout")
                time.sleep(POLL_SECONDS)

    def _crd_established(self, name: str) -> bool:
        try:
            body = self.kubectl.get_json("crd", name)
        except PlatformError:
            return False
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(entry.get("type") == "Established" and entry.get("status") == "True" for entry in conditions)

    def _apply_settings(self) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARGOCD_NAMESPACE}}
        self.kubectl.apply([namespace], namespace=ARGOCD_NAMESPACE)
        settings: list[dict[str, Any]] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm", "labels": {**PART_OF_ARGOCD, "app.kubernetes.io/name": "argocd-cm"}},
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "argocd-rbac-cm",
                    "labels": {**PART_OF_ARGOCD, "app.kubernetes.io/name": "argocd-rbac-cm"},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "argocd-secret",
                    "labels": {**PART_OF_ARGOCD, "app.kubernetes.io/name": "argocd-secret"},
                },
                "type": "Opaque",
                "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
            },
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default"},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            },
        ]
        self.kubectl.apply(settings, namespace=ARGOCD_NAMESPACE)
        for patch in self.configuration_patches:
            self.kubectl.run(
                "patch", "configmap", "argocd-cm", "--type=merge", f"--patch-file={patch}", namespace=ARGOCD_NAMESPACE
            )

    def _launch(self, name: str, executable: str, arguments: list[str], environment: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, [executable, *arguments], self.log_path(name))
        self._processes.append(process)
        process.start(terminate_with_parent=self.terminate_with_parent, environment=environment)
        return process

    def _wait(self, deadline: float, process: ManagedProcess, ready: Callable[[], bool], description: str) -> None:
        wait_until_ready(deadline, process, ready, description, error_type=ArgoCDStartError)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK_ADDRESS, port), timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def build_argocd_binaries(build_script: Path, *, timeout_seconds: float | None = None) -> Path:
    """Run ``scripts/argocd/build.sh`` (instant once built) and return the bin directory it prints."""
    return build_tool(build_script, timeout_seconds=timeout_seconds)
