"""TLS for the gRPC server: a certificate and key, and optionally a client CA that makes it mutual TLS."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc


@dataclasses.dataclass(frozen=True, slots=True)
class TlsSettings:
    """PEM files. With ``client_ca``, clients must present a certificate signed by it (mTLS)."""

    certificate_chain: Path
    private_key: Path
    client_ca: Path | None = None

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key.read_bytes(), self.certificate_chain.read_bytes())],
            root_certificates=self.client_ca.read_bytes() if self.client_ca is not None else None,
            require_client_auth=self.client_ca is not None,
        )
