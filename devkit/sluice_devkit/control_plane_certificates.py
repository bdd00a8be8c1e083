"""The certificates of one local control plane, made with the ``cryptography`` package.

``generate_control_plane_certificates`` writes a certificate authority, the API server's serving certificate,
client certificates (an administrator in ``system:masters`` and the controller manager's own identity), the
aggregation layer's front-proxy CA and client, and a service-account signing key, with the extensions that
strict X.509 verifiers (Python 3.13+, Go) demand. ``issue_leaf_certificate`` issues one more from the same CA (a
node's kubelet, KEDA, Argo CD). Private keys are written readable by their owner only.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sluice_devkit.managed_process import LOOPBACK_ADDRESS

__all__ = [
    "ControlPlaneCertificates",
    "generate_control_plane_certificates",
    "issue_leaf_certificate",
    "write_private_file",
]

CERTIFICATE_VALIDITY = datetime.timedelta(days=365)
FRONT_PROXY_CLIENT_NAME = "front-proxy-client"
"""The common name of the aggregation layer's client certificate (the API server allows only this name)."""


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


def write_private_file(path: Path, content: bytes) -> None:
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
    write_private_file(key_path("ca"), _private_key_pem(certificate_authority_key))
    for name, (subject, alternative_names) in leaf_subjects.items():
        certificate, private_key = _leaf_certificate(
            subject=subject,
            certificate_authority_certificate=certificate_authority_certificate,
            certificate_authority_key=certificate_authority_key,
            alternative_names=alternative_names,
        )
        certificate_path(name).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        write_private_file(key_path(name), _private_key_pem(private_key))

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
    write_private_file(key_path("front-proxy-client"), _private_key_pem(front_proxy_client_key))

    service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private_file(key_path("service-account"), _private_key_pem(service_account_key))
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
    write_private_file(key_path, _private_key_pem(private_key))
    return certificate_path, key_path
