"""TLS and mutual TLS: with certificates configured the server speaks only TLS, and with a client
CA it refuses clients without a certificate signed by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.client import ClientTls, SluiceClient
from sluice.core.errors import RemoteCallError
from sluice.core.events import EventData
from sluice.rpc import TlsSettings, build_grpc_server
from sluice.store import EventStore
from tests.grpc_api.certificates import make_certificates

pytestmark = [pytest.mark.postgres]


async def test_tls_and_mutual_tls(store: EventStore, tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    server = build_grpc_server(
        store,
        address="127.0.0.1:0",
        tls=TlsSettings(files.server_certificate, files.server_key, client_ca=files.authority),
    )
    await server.start()
    target = f"localhost:{server.port}"
    try:
        mutual = ClientTls(
            certificate_authority=files.authority,
            certificate_chain=files.client_certificate,
            private_key=files.client_key,
        )
        async with await SluiceClient.connect(target, tls=mutual) as client:
            assert (await client.append("orders", EventData("A", {}))).offsets == (0,)

        without_certificate = ClientTls(certificate_authority=files.authority)
        async with await SluiceClient.connect(target, tls=without_certificate) as client:
            with pytest.raises(RemoteCallError) as refused:
                await client.append("orders", EventData("A", {}), deadline_seconds=5)
            assert refused.value.status == "UNAVAILABLE"

        async with await SluiceClient.connect(target) as plaintext:
            with pytest.raises(RemoteCallError):
                await plaintext.append("orders", EventData("A", {}), deadline_seconds=5)
    finally:
        await server.stop(grace_seconds=1)
