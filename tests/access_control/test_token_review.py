"""Kubernetes service-account tokens, checked by a real TokenReview against the session's local control
plane: a ServiceAccount's token (from the TokenRequest API) names ``system:serviceaccount:<ns>:<name>``,
bad tokens are refused, answers are cached, and the principal it names is authorized by the policy."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import sluice
from sluice import EventData
from sluice.client import SluiceClient
from sluice.core.errors import PermissionDeniedError, UnauthenticatedError
from sluice.rpc.server import build_grpc_server
from sluice.security import AuthenticatorChain, BearerTokens, TokenReviewAuthenticator, parse_policy
from tests.custom_resources.cluster import KubernetesCluster
from tests.custom_resources.conftest import kubernetes_cluster

__all__ = ["kubernetes_cluster"]

pytestmark = [pytest.mark.kubernetes, pytest.mark.slow]


@dataclass(frozen=True)
class ServiceAccounts:
    """A namespace with a reviewer account (allowed to create TokenReviews) and two callers' tokens."""

    namespace: str
    api_server_url: str
    certificate_authority: Path
    reviewer_token: str
    writer_token: str
    reader_token: str


@pytest.fixture
def service_accounts(kubernetes_cluster: KubernetesCluster) -> Iterator[ServiceAccounts]:
    namespace = f"access-{uuid.uuid4().hex[:8]}"
    binding = f"{namespace}-token-reviewer"
    kubernetes_cluster.create_namespace(namespace)
    try:
        for account in ("sluice-gateway", "writer", "reader"):
            kubernetes_cluster.kubectl("create", "serviceaccount", account, namespace=namespace)
        kubernetes_cluster.kubectl(
            "create",
            "clusterrolebinding",
            binding,
            "--clusterrole=system:auth-delegator",
            f"--serviceaccount={namespace}:sluice-gateway",
        )

        def token_of(account: str) -> str:  # the TokenRequest API
            return kubernetes_cluster.kubectl("create", "token", account, namespace=namespace).stdout.strip()

        cluster = json.loads(kubernetes_cluster.kubeconfig_path.read_text(encoding="utf-8"))["clusters"][0]["cluster"]
        yield ServiceAccounts(
            namespace=namespace,
            api_server_url=cluster["server"],
            certificate_authority=Path(cluster["certificate-authority"]),
            reviewer_token=token_of("sluice-gateway"),
            writer_token=token_of("writer"),
            reader_token=token_of("reader"),
        )
    finally:
        kubernetes_cluster.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")
        kubernetes_cluster.delete_namespace(namespace)


@pytest.fixture
async def token_review(service_accounts: ServiceAccounts) -> AsyncIterator[TokenReviewAuthenticator]:
    authenticator = TokenReviewAuthenticator(
        api_server_url=service_accounts.api_server_url,
        reviewer_token=service_accounts.reviewer_token,
        certificate_authority=service_accounts.certificate_authority,
    )
    try:
        yield authenticator
    finally:
        await authenticator.aclose()


async def test_a_service_account_token_names_its_account_and_bad_tokens_are_refused(
    token_review: TokenReviewAuthenticator, service_accounts: ServiceAccounts
) -> None:
    principal = await token_review.principal_of(f"Bearer {service_accounts.writer_token}")
    assert principal == f"system:serviceaccount:{service_accounts.namespace}:writer"
    assert await token_review.principal_of(f"bearer {service_accounts.writer_token}") == principal
    assert token_review.reviews == 1  # the second answer came from the cache

    burst = await asyncio.gather(
        *(token_review.principal_of(f"Bearer {service_accounts.reader_token}") for _ in range(10))
    )
    assert set(burst) == {f"system:serviceaccount:{service_accounts.namespace}:reader"}
    assert token_review.reviews == 2  # ten concurrent calls, one review

    header, payload, signature = service_accounts.writer_token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(UnauthenticatedError, match="refused by the Kubernetes TokenReview"):
        await token_review.principal_of(f"Bearer {forged}")
    assert token_review.reviews == 3
    with pytest.raises(UnauthenticatedError, match="unknown bearer token"):
        await token_review.principal_of("Bearer not-a-jwt")
    with pytest.raises(UnauthenticatedError, match="missing bearer token"):
        await token_review.principal_of(None)


async def test_a_reviewer_without_the_auth_delegator_role_cannot_vouch_for_anyone(
    service_accounts: ServiceAccounts,
) -> None:
    unprivileged = TokenReviewAuthenticator(
        api_server_url=service_accounts.api_server_url,
        reviewer_token=service_accounts.reader_token,  # may not create TokenReviews
        certificate_authority=service_accounts.certificate_authority,
    )
    try:
        with pytest.raises(UnauthenticatedError, match=r"answered 403.*system:auth-delegator"):
            await unprivileged.principal_of(f"Bearer {service_accounts.writer_token}")
    finally:
        await unprivileged.aclose()


async def test_service_accounts_are_authorized_by_the_policy_over_grpc(
    token_review: TokenReviewAuthenticator, service_accounts: ServiceAccounts
) -> None:
    namespace = service_accounts.namespace
    policy = parse_policy(
        json.dumps(
            {
                "grants": [
                    {"principals": [f"system:serviceaccount:{namespace}:writer"], "streams": ["orders"],
                     "permissions": ["write"]},
                    {"principals": [f"system:serviceaccount:{namespace}:*"], "streams": ["*"],
                     "permissions": ["read"]},
                ]
            }
        )
    )  # fmt: skip
    authenticator = AuthenticatorChain([BearerTokens({"static-token": "ci"}), token_review])
    async with await sluice.connect("memory://") as store:
        server = build_grpc_server(store, address="127.0.0.1:0", tokens=authenticator, policy=policy)
        await server.start()
        try:
            target = f"127.0.0.1:{server.port}"
            async with await SluiceClient.connect(target, token=service_accounts.reader_token) as reader:
                with pytest.raises(PermissionDeniedError, match=f"serviceaccount:{namespace}:reader' may not write"):
                    await reader.append("orders", EventData("OrderPlaced", {}))
            async with await SluiceClient.connect(target, token=service_accounts.writer_token) as writer:
                assert (await writer.append("orders", EventData("OrderPlaced", {}))).offsets == (0,)
            async with await SluiceClient.connect(target, token=service_accounts.reader_token) as reader:
                assert [event.offset async for event in reader.read("orders")] == [0]
            async with await SluiceClient.connect(target, token="static-token") as static:
                with pytest.raises(PermissionDeniedError, match="'ci' may not read"):  # known, but granted nothing
                    [event async for event in static.read("orders")]
            async with await SluiceClient.connect(target, token="forged.token.here") as impostor:
                with pytest.raises(UnauthenticatedError):
                    await impostor.append("orders", EventData("OrderPlaced", {}))
        finally:
            await server.stop(grace_seconds=1)
