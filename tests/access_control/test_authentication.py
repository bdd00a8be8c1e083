"""Authenticators without a cluster: the chain's order and errors, and how a pod's TokenReview
authenticator finds the API server and its credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.core.errors import InvalidArgumentError, UnauthenticatedError
from sluice.security import AuthenticatorChain, BearerTokens, TokenReviewAuthenticator
from sluice.serving.serve import ServeSettings, gateway_authenticator


async def test_the_chain_asks_each_authenticator_in_turn() -> None:
    chain = AuthenticatorChain([BearerTokens({"first": "ada"}), BearerTokens({"second": "grace", "first": "eve"})])
    assert await chain.principal_of("Bearer first") == "ada"
    assert await chain.principal_of("Bearer second") == "grace"
    with pytest.raises(UnauthenticatedError, match="missing bearer token"):
        await chain.principal_of(None)
    with pytest.raises(UnauthenticatedError, match="unknown bearer token"):
        await chain.principal_of("Bearer third")
    with pytest.raises(InvalidArgumentError):
        AuthenticatorChain([])


def test_the_gateway_checks_static_tokens_before_token_reviews(tmp_path: Path) -> None:
    tokens = BearerTokens({"t": "ada"})
    review = TokenReviewAuthenticator(api_server_url="https://127.0.0.1:6443", reviewer_token="x")
    assert gateway_authenticator(ServeSettings(database_url="memory://")) is None
    assert gateway_authenticator(ServeSettings(database_url="memory://", tokens=tokens)) is tokens
    assert gateway_authenticator(ServeSettings(database_url="memory://", token_review=review)) is review
    chain = gateway_authenticator(ServeSettings(database_url="memory://", tokens=tokens, token_review=review))
    assert isinstance(chain, AuthenticatorChain)


def test_in_a_pod_the_api_server_and_credentials_come_from_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("reviewer-token\n", encoding="utf-8")
    (tmp_path / "ca.crt").write_text("", encoding="utf-8")
    environment = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    authenticator = TokenReviewAuthenticator.in_cluster(environ=environment, service_account_directory=tmp_path)
    assert authenticator is not None
    assert authenticator._url == "https://10.0.0.1:443/apis/authentication.k8s.io/v1/tokenreviews"
    assert authenticator._credentials() == "reviewer-token"
    (tmp_path / "token").write_text("rotated-token\n", encoding="utf-8")
    assert authenticator._credentials() == "rotated-token"  # projected tokens rotate: read every time
    assert TokenReviewAuthenticator.in_cluster(environ={}, service_account_directory=tmp_path) is None
    assert TokenReviewAuthenticator.in_cluster(environ=environment, service_account_directory=tmp_path / "x") is None


def test_token_review_settings_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="https"):
        TokenReviewAuthenticator(api_server_url="http://127.0.0.1:8080", reviewer_token="x")
    with pytest.raises(InvalidArgumentError, match="reviewer"):
        TokenReviewAuthenticator(api_server_url="https://127.0.0.1:6443")
