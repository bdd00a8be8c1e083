"""How the client reaches a server: TLS files (optionally a client certificate for mTLS) and the
metadata every call carries (the bearer token)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc


@dataclasses.dataclass(frozen=True, slots=True)
class ClientTls:
    """PEM files. ``certificate_authority`` verifies the server (the system roots when None);
    ``certificate_chain`` and ``private_key`` present a client certificate (mTLS)."""

    certificate_authority: Path | None = None
    certificate_chain: Path | None = None
    private_key: Path | None = None
    server_name: str | None = None
    """Overrides the name checked against the server's certificate (for tests and IP addresses)."""

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.certificate_authority.read_bytes() if self.certificate_authority else None,
            private_key=self.private_key.read_bytes() if self.private_key else None,
            certificate_chain=self.certificate_chain.read_bytes() if self.certificate_chain else None,
        )

    def channel_options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def call_metadata(token: str | None, correlation_id: str | None = None) -> tuple[tuple[str, str], ...]:
    """The metadata of one call: the bearer token and the correlation id, when given."""
    metadata: list[tuple[str, str]] = []
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    if correlation_id is not None:
        metadata.append(("x-correlation-id", correlation_id))
    return tuple(metadata)
