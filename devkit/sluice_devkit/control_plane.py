"""A real Kubernetes control plane run as local processes, for the operator's tests and local development.

The binaries (etcd, kube-apiserver, kube-controller-manager) come from ``scripts/control-plane/build.sh``,
which builds them from Go modules; no container runtime is involved. ``LocalControlPlane`` then:

1. generates a certificate authority, a serving certificate, client certificates (an administrator in
   ``system:masters`` and the controller manager's own identity) and a service-account signing key with the
   ``cryptography`` package, with the extensions that strict X.509 verifiers (Python 3.13+, Go) demand;
2. starts etcd, kube-apiserver and kube-controller-manager on free ports bound to 127.0.0.1 only, each
   logging to a file in the work directory;
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
import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sluice.child_processes import parent_death_hook
from sluice_devkit.started_once import StartedOnce

__all__ = [
    "ControlPlaneCertificates",
    "ControlPlaneStartError",
    "LocalControlPlane",
    "build_control_plane_binaries",
    "generate_control_plane_certificates",
    "issue_leaf_certificate",
]

LOOPBACK_ADDRESS = "127.0.0.1"
DEFAULT_READY_TIMEOUT_SECONDS = 120.0
DEFAULT_STOP_GRACE_PERIOD_SECONDS = 10.0
DEFAULT_SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LOG_TAIL_LINE_COUNT = 40
POLL_INTERVAL_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 2.0
CERTIFICATE_VALIDITY = datetime.timedelta(days=365)
FRONT_PROXY_CLIENT_NAME = "front-proxy-client"


class ControlPlaneStartError(RuntimeError):
    """A control-plane process exited, or did not become ready in time, while starting."""


@dataclass(frozen=True)
class ControlPlaneCertificates:
    """Paths of the PEM files that secure one local control plane."""

    certificate_authority_certificate: Path
    certificate_authority_key: Path
    serving_certificate: Path
    serving_key: Path
    administrator_certificate: Path
    administrator_key: Path
    controller_manager_certificate: Path
    controller_manager_key: Path
    service_account_private_key: Path
    service_account_public_key: Path
    front_proxy_certificate_authority_certificate: Path
    """The aggregation layer's own CA (kubeadm's front-proxy CA): it signs only the proxy client certificate."""
    front_proxy_client_certificate: Path
    front_proxy_client_key: Path


def _write_private_file(path: Path, content: bytes) -> None:
    """Write a file readable only by its owner (private keys)."""
    file_descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(file_descriptor, "wb") as private_file:
        private_file.write(content)


def _private_key_pem(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + CERTIFICATE_VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _certificate_authority(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate with the extensions strict verifiers demand, and its key."""
    certificate_authority_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        _certificate_builder(name, name, certificate_authority_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(certificate_authority_key.public_key()),
            critical=False,
        )
        .sign(certificate_authority_key, hashes.SHA256())
    )
    return certificate, certificate_authority_key


def _leaf_certificate(
    *,
    subject: x509.Name,
    certificate_authority_certificate: x509.Certificate,
    certificate_authority_key: CertificateIssuerPrivateKeyTypes,
    alternative_names: Sequence[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a certificate usable both as a TLS server and as a TLS client certificate."""
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    authority_key_identifier = certificate_authority_certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    builder = (
        _certificate_builder(subject, certificate_authority_certificate.subject, leaf_key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(authority_key_identifier),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(list(alternative_names)), critical=False)
    )
    return builder.sign(certificate_authority_key, hashes.SHA256()), leaf_key


def generate_control_plane_certificates(
    directory: Path,
    *,
    first_service_address: ipaddress.IPv4Address,
    node_address: ipaddress.IPv4Address | None = None,
) -> ControlPlaneCertificates:
    """Create the certificate authority, leaf certificates and service-account key in ``directory``.

    Every leaf certificate names ``localhost`` and ``127.0.0.1`` so it verifies whichever of the two a
    client dials; the serving certificate also names the in-cluster ``kubernetes`` service and, with a
    local node, the node's bridge address the API server then listens on.
    """
    directory.mkdir(parents=True, exist_ok=True)
    certificate_authority_certificate, certificate_authority_key = _certificate_authority(
        "sluice-local-control-plane-ca"
    )

    loopback_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.IPv4Address(LOOPBACK_ADDRESS)),
    ]
    serving_names: list[x509.GeneralName] = [
        *loopback_names,
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
        x509.IPAddress(first_service_address),
        *([x509.IPAddress(node_address)] if node_address is not None else []),
    ]
    leaf_subjects: dict[str, tuple[x509.Name, list[x509.GeneralName]]] = {
        "serving": (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]), serving_names),
        "administrator": (
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "sluice-local-administrator"),
                ]
            ),
            loopback_names,
        ),
        "controller-manager": (
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:kube-controller-manager")]),
            loopback_names,
        ),
    }

    def certificate_path(name: str) -> Path:
        return directory / f"{name}.crt"

    def key_path(name: str) -> Path:
        return directory / f"{name}.key"

    certificate_path("ca").write_bytes(certificate_authority_certificate.public_bytes(serialization.Encoding.PEM))
    _write_private_file(key_path("ca"), _private_key_pem(certificate_authority_key))
    for name, (subject, alternative_names) in leaf_subjects.items():
        certificate, private_key = _leaf_certificate(
            subject=subject,
            certificate_authority_certificate=certificate_authority_certificate,
            certificate_authority_key=certificate_authority_key,
            alternative_names=alternative_names,
        )
        certificate_path(name).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_private_file(key_path(name), _private_key_pem(private_key))

    # The aggregation layer (front proxy): kube-apiserver presents this client certificate to aggregated API
    # servers (KEDA's metrics adapter) and passes the caller's identity in X-Remote-* headers, which those
    # servers trust only from a certificate of this separate CA named in --requestheader-allowed-names.
    front_proxy_authority_certificate, front_proxy_authority_key = _certificate_authority("sluice-local-front-proxy-ca")
    certificate_path("front-proxy-ca").write_bytes(
        front_proxy_authority_certificate.public_bytes(serialization.Encoding.PEM)
    )
    front_proxy_client_certificate, front_proxy_client_key = _leaf_certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FRONT_PROXY_CLIENT_NAME)]),
        certificate_authority_certificate=front_proxy_authority_certificate,
        certificate_authority_key=front_proxy_authority_key,
        alternative_names=loopback_names,
    )
    certificate_path("front-proxy-client").write_bytes(
        front_proxy_client_certificate.public_bytes(serialization.Encoding.PEM)
    )
    _write_private_file(key_path("front-proxy-client"), _private_key_pem(front_proxy_client_key))

    service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private_file(key_path("service-account"), _private_key_pem(service_account_key))
    service_account_public_key_path = directory / "service-account.pub"
    service_account_public_key_path.write_bytes(
        service_account_key.public_key().public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    return ControlPlaneCertificates(
        certificate_authority_certificate=certificate_path("ca"),
        certificate_authority_key=key_path("ca"),
        serving_certificate=certificate_path("serving"),
        serving_key=key_path("serving"),
        administrator_certificate=certificate_path("administrator"),
        administrator_key=key_path("administrator"),
        controller_manager_certificate=certificate_path("controller-manager"),
        controller_manager_key=key_path("controller-manager"),
        service_account_private_key=key_path("service-account"),
        service_account_public_key=service_account_public_key_path,
        front_proxy_certificate_authority_certificate=certificate_path("front-proxy-ca"),
        front_proxy_client_certificate=certificate_path("front-proxy-client"),
        front_proxy_client_key=key_path("front-proxy-client"),
    )


def issue_leaf_certificate(
    certificates: ControlPlaneCertificates,
    directory: Path,
    *,
    name: str,
    common_name: str,
    organization: str | None = None,
    addresses: Sequence[ipaddress.IPv4Address] = (),
    dns_names: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Issue one more leaf certificate from the control plane's CA (a node's kubelet, scheduler, proxy).

    Returns the certificate's and the key's paths (``<directory>/<name>.crt`` and ``.key``); the
    certificate names ``localhost``, ``127.0.0.1``, ``addresses`` and ``dns_names``.
    """
    authority_certificate = x509.load_pem_x509_certificate(certificates.certificate_authority_certificate.read_bytes())
    authority_key = serialization.load_pem_private_key(certificates.certificate_authority_key.read_bytes(), None)
    if not isinstance(authority_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{certificates.certificate_authority_key} is not the EC key this module writes")
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    certificate, private_key = _leaf_certificate(
        subject=x509.Name(attributes),
        certificate_authority_certificate=authority_certificate,
        certificate_authority_key=authority_key,
        alternative_names=[
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.IPv4Address(LOOPBACK_ADDRESS)),
            *(x509.IPAddress(address) for address in addresses),
            *(x509.DNSName(name) for name in dns_names),
        ],
    )
    directory.mkdir(parents=True, exist_ok=True)
    certificate_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_private_file(key_path, _private_key_pem(private_key))
    return certificate_path, key_path


def _free_loopback_ports(count: int) -> list[int]:
    """Ports that were free on 127.0.0.1 a moment ago (all held open together, so they are distinct)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            listening_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listening_socket.bind((LOOPBACK_ADDRESS, 0))
            sockets.append(listening_socket)
        return [int(bound_socket.getsockname()[1]) for bound_socket in sockets]
    finally:
        for bound_socket in sockets:
            bound_socket.close()


def _log_tail(log_path: Path, line_count: int = LOG_TAIL_LINE_COUNT) -> str:
    try:
        with log_path.open("rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - 64 * 1024))
            content = log_file.read().decode("utf-8", errors="replace")
    except OSError as error:
        return f"(could not read {log_path}: {error})"
    return "\n".join(content.splitlines()[-line_count:])


class ManagedProcess:
    """One control-plane process: started with its output in a log file, stopped by its process id."""

    def __init__(self, name: str, command: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process_id(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, *, terminate_with_parent: bool, environment: Mapping[str, str] | None = None) -> None:
        pre_exec_hook = parent_death_hook() if terminate_with_parent else None
        with self.log_path.open("ab") as log_file:
            log_file.write(f"# started: {' '.join(self.command)}\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches the test process, which then stops these.
                start_new_session=True,
                # Only one prctl call runs between fork and exec (resolved beforehand in the parent).
                preexec_fn=pre_exec_hook,  # noqa: PLW1509
                close_fds=True,
            )

    def exit_code(self) -> int | None:
        """The exit code if the process has exited, else None (also None if it never started)."""
        return None if self._process is None else self._process.poll()

    def raise_if_exited(self) -> None:
        exit_code = self.exit_code()
        if exit_code is not None:
            raise ControlPlaneStartError(
                f"{self.name} exited with code {exit_code} while the control plane was starting; "
                f"last lines of {self.log_path}:\n{_log_tail(self.log_path)}"
            )

    def stop(self, grace_period_seconds: float) -> None:
        """SIGTERM, then SIGKILL once the grace period is over; always reaps the process."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_period_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()


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
        """
        self.bin_directory = Path(bin_directory).absolute()
        self.work_directory = Path(work_directory).absolute()
        self.ready_timeout_seconds = ready_timeout_seconds
        self.stop_grace_period_seconds = stop_grace_period_seconds
        self.service_cluster_ip_range = ipaddress.IPv4Network(service_cluster_ip_range)
        self.terminate_with_parent = terminate_with_parent
        self.wait_for_default_service_account = wait_for_default_service_account
        self.controllers = tuple(controllers)
        self.node_address = node_address
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
        ) = _free_loopback_ports(4)
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
        self._wait_for_answer(etcd, deadline, f"{etcd_url}/health", None, "etcd /health")

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
        self._wait_for_answer(
            apiserver, deadline, f"{self._server_url}/readyz", apiserver_context, "kube-apiserver /readyz"
        )

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
            ],
        )
        self._wait_for_answer(
            controller_manager,
            deadline,
            f"https://{LOOPBACK_ADDRESS}:{controller_manager_port}/healthz",
            apiserver_context,
            "kube-controller-manager /healthz",
        )
        if self.wait_for_default_service_account:
            self._wait_for_answer(
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

    @staticmethod
    def _answers_ok(url: str, *, context: ssl.SSLContext | None, timeout_seconds: float) -> bool:
        request = urllib.request.Request(url, method="GET")  # noqa: S310 - fixed http(s) loopback URLs
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds, context=context) as response:  # noqa: S310
                return int(response.status) == 200
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    @staticmethod
    def _wait_for_answer(
        process: ManagedProcess,
        deadline: float,
        url: str,
        context: ssl.SSLContext | None,
        description: str,
    ) -> None:
        """Poll ``url`` until it answers 200, failing early if ``process`` exits."""
        while True:
            process.raise_if_exited()
            request_timeout = min(REQUEST_TIMEOUT_SECONDS, max(0.1, deadline - time.monotonic()))
            if LocalControlPlane._answers_ok(url, context=context, timeout_seconds=request_timeout):
                return
            if time.monotonic() > deadline:
                process.raise_if_exited()
                raise ControlPlaneStartError(
                    f"{description} was not ready before the start timeout; "
                    f"last lines of {process.log_path}:\n{_log_tail(process.log_path)}"
                )
            time.sleep(POLL_INTERVAL_SECONDS)

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
        _write_private_file(path, (json.dumps(kubeconfig, indent=2) + "\n").encode())


def build_control_plane_binaries(build_script: Path, *, timeout_seconds: float | None = None) -> Path:
    """Run ``scripts/control-plane/build.sh`` (instant once built) and return the bin directory it prints.

    A cold build takes tens of minutes; its progress goes to this process's standard error.
    """
    completed = subprocess.run(
        ["bash", str(build_script)],
        stdout=subprocess.PIPE,
        check=False,
        timeout=timeout_seconds,
    )
    output_lines = completed.stdout.decode().strip().splitlines()
    if completed.returncode != 0 or not output_lines:
        raise RuntimeError(f"{build_script} failed with exit code {completed.returncode}")
    return Path(output_lines[-1])
