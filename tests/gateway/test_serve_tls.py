"""With TLS configured, ``sluice serve`` serves REST over TLS too (issue 16, item 17): the API port speaks
only TLS (mutual TLS with a client CA), so bearer tokens never travel in clear, and the plain health port
serves only ``/health/*`` for probes."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from sluice.rpc.tls import TlsSettings
from sluice.security import BearerTokens
from sluice.serving.serve import ServeSettings
from tests.gateway.running import TOKEN, gateway_in_process
from tests.grpc_api.certificates import CertificateFiles, make_certificates

pytestmark = pytest.mark.slow

AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def certificates(tmp_path: Path) -> CertificateFiles:
    return make_certificates(tmp_path)


def tls_settings(certificates: CertificateFiles, *, mutual: bool) -> ServeSettings:
    return ServeSettings(
        database_url="memory://",
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        health_address="127.0.0.1:0",
        tokens=BearerTokens({TOKEN: "tester"}),
        tls=TlsSettings(
            certificate_chain=certificates.server_certificate,
            private_key=certificates.server_key,
            client_ca=certificates.authority if mutual else None,
        ),
        grace_seconds=1,
    )


def client_context(certificates: CertificateFiles, *, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificates.authority))
    if with_certificate:
        context.load_cert_chain(str(certificates.client_certificate), str(certificates.client_key))
    return context


async def test_rest_is_served_over_tls_and_probes_over_the_plain_health_port(certificates: CertificateFiles) -> None:
    async with gateway_in_process(tls_settings(certificates, mutual=False)) as addresses:
        assert addresses.health_port is not None
        verify = client_context(certificates, with_certificate=False)
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{addresses.http_port}", verify=verify) as https:
            answer = await https.get("/api/event-streams", headers=AUTHORIZATION)
            assert answer.status_code == 200, answer.text
            assert (await https.get("/health/ready")).status_code == 200
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{addresses.http_port}", timeout=5) as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get("/api/event-streams", headers=AUTHORIZATION)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{addresses.health_port}", timeout=5) as probes:
            assert (await probes.get("/health/live")).status_code == 200
            assert (await probes.get("/health/ready")).status_code == 200
            for path in ("/api/event-streams", "/metrics", "/openapi.json"):
                refused = await probes.get(path, headers=AUTHORIZATION)
                assert refused.status_code == 404, path
                assert refused.headers["content-type"] == "application/problem+json"


async def test_with_a_client_ca_rest_requires_a_client_certificate(certificates: CertificateFiles) -> None:
    async with gateway_in_process(tls_settings(certificates, mutual=True)) as addresses:
        base_url = f"https://127.0.0.1:{addresses.http_port}"
        anonymous = client_context(certificates, with_certificate=False)
        async with httpx.AsyncClient(base_url=base_url, verify=anonymous, timeout=5) as https:
            with pytest.raises(httpx.TransportError):
                await https.get("/api/event-streams", headers=AUTHORIZATION)
        identified = client_context(certificates, with_certificate=True)
        async with httpx.AsyncClient(base_url=base_url, verify=identified, timeout=5) as https:
            assert (await https.get("/api/event-streams", headers=AUTHORIZATION)).status_code == 200
