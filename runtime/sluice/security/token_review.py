"""Kubernetes service-account tokens as credentials: ``TokenReviewAuthenticator`` asks the API server.

A caller presents its pod's service-account token (``Authorization: Bearer <jwt>``); Sluice posts a
``TokenReview`` to the Kubernetes API with its own service-account credentials and, when the API server
says the token is valid, the caller is the principal it names: ``system:serviceaccount:<ns>:<name>``.
Sluice's own account needs the ``system:auth-delegator`` ClusterRole (it may create TokenReviews).

Answers are cached for a short time (``cache_ttl``, 10 s; refusals 2 s) under a hash of the token, so
a busy caller costs one review per interval and a revoked token stops working within the interval;
concurrent calls with a token not yet reviewed share one review.
This module talks to the API with httpx only: the runtime does not import the Kubernetes client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import httpx

from sluice.core.errors import InvalidArgumentError, UnauthenticatedError

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIRECTORY = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105  (a path, not a secret)
DEFAULT_CACHE_TTL = timedelta(seconds=10)
DEFAULT_REFUSAL_CACHE_TTL = timedelta(seconds=2)
DEFAULT_TIMEOUT = timedelta(seconds=5)
MAX_CACHED_TOKENS = 10_000
_BEARER_PREFIX = "bearer "


@dataclasses.dataclass(frozen=True, slots=True)
class _Verdict:
    principal: str | None
    expires_at: float


class TokenReviewAuthenticator:
    """Authenticates bearer tokens by posting a TokenReview to the Kubernetes API server."""

    def __init__(
        self,
        *,
        api_server_url: str,
        reviewer_token_file: Path | None = None,
        reviewer_token: str | None = None,
        certificate_authority: Path | None = None,
        audiences: Sequence[str] = (),
        cache_ttl: timedelta = DEFAULT_CACHE_TTL,
        refusal_cache_ttl: timedelta = DEFAULT_REFUSAL_CACHE_TTL,
        timeout: timedelta = DEFAULT_TIMEOUT,
    ) -> None:
        if (reviewer_token_file is None) == (reviewer_token is None):
            raise InvalidArgumentError("give the reviewer's credentials as reviewer_token_file or reviewer_token")
        if not api_server_url.startswith("https://"):
            raise InvalidArgumentError(f"the Kubernetes API server URL must be https://..., got {api_server_url!r}")
        self._url = api_server_url.rstrip("/") + TOKEN_REVIEW_PATH
        self._reviewer_token_file = reviewer_token_file
        self._reviewer_token = reviewer_token
        self._certificate_authority = certificate_authority
        self._audiences = list(audiences)
        self._cache_seconds = cache_ttl.total_seconds()
        self._refusal_cache_seconds = refusal_cache_ttl.total_seconds()
        self._timeout_seconds = timeout.total_seconds()
        self._verdicts: dict[str, _Verdict] = {}
        self._reviews_in_flight: dict[str, asyncio.Task[str | None]] = {}
        self._client: httpx.AsyncClient | None = None
        self.reviews = 0
        """How many TokenReviews were posted (the cache's tests read it)."""

    @classmethod
    def in_cluster(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        service_account_directory: Path = SERVICE_ACCOUNT_DIRECTORY,
        audiences: Sequence[str] = (),
    ) -> Self | None:
        """The authenticator of a pod: the API server from ``KUBERNETES_SERVICE_HOST``/``_PORT``, the
        pod's service-account token and CA. None when not running in a cluster."""
        environment = os.environ if environ is None else environ
        host = environment.get("KUBERNETES_SERVICE_HOST")
        port = environment.get("KUBERNETES_SERVICE_PORT", "443")
        token_file = service_account_directory / "token"
        if not host or not token_file.is_file():
            return None
        bracketed = f"[{host}]" if ":" in host else host
        return cls(
            api_server_url=f"https://{bracketed}:{port}",
            reviewer_token_file=token_file,
            certificate_authority=service_account_directory / "ca.crt",
            audiences=audiences,
        )

    async def principal_of(self, authorization: str | None) -> str:
        token = _bearer_token(authorization)
        key = hashlib.sha256(token.encode()).hexdigest()
        verdict = self._verdicts.get(key)
        if verdict is not None and verdict.expires_at > time.monotonic():
            principal = verdict.principal
        else:
            principal = await self._shared_review(key, token)
        if principal is None:
            raise UnauthenticatedError("the bearer token was refused by the Kubernetes TokenReview")
        return principal

    async def _shared_review(self, key: str, token: str) -> str | None:
        """One review per token at a time: a burst of calls from a new caller waits for the same answer.
        (Shielded: a caller that gives up does not cancel the review the others wait for.)"""
        review = self._reviews_in_flight.get(key)
        if review is None:
            review = asyncio.create_task(self._review_and_remember(key, token), name="sluice-token-review")
            self._reviews_in_flight[key] = review
            review.add_done_callback(lambda _: self._reviews_in_flight.pop(key, None))
        return await asyncio.shield(review)

    async def _review_and_remember(self, key: str, token: str) -> str | None:
        principal = await self._review(token)
        ttl = self._cache_seconds if principal is not None else self._refusal_cache_seconds
        self._remember(key, _Verdict(principal, time.monotonic() + ttl))
        return principal

    async def aclose(self) -> None:
        """Stop reviews in flight and close the connection pool to the API server."""
        reviews = list(self._reviews_in_flight.values())
        for review in reviews:
            review.cancel()
        await asyncio.gather(*reviews, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _review(self, token: str) -> str | None:
        """The username the API server vouches for, or None when it says the token is not valid."""
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, **({"audiences": self._audiences} if self._audiences else {})},
        }
        self.reviews += 1
        try:
            answer = await self._http().post(
                self._url, json=body, headers={"Authorization": f"Bearer {self._credentials()}"}
            )
        except httpx.HTTPError as error:
            logger.error("TokenReview failed", extra={"error": f"{type(error).__name__}: {error}"})
            raise UnauthenticatedError(
                "bearer tokens cannot be verified now: the Kubernetes API is unreachable"
            ) from None
        if answer.status_code not in {httpx.codes.CREATED, httpx.codes.OK}:
            logger.error("TokenReview refused", extra={"status_code": answer.status_code})
            raise UnauthenticatedError(
                f"bearer tokens cannot be verified now: the Kubernetes API answered {answer.status_code} to the "
                "TokenReview (does Sluice's service account have the system:auth-delegator ClusterRole?)"
            )
        status = answer.json().get("status") or {}
        if status.get("authenticated") is not True:
            return None
        if self._audiences and not set(status.get("audiences") or ()) & set(self._audiences):
            return None
        username = (status.get("user") or {}).get("username")
        return username if isinstance(username, str) and username else None

    def _credentials(self) -> str:
        if self._reviewer_token is not None:
            return self._reviewer_token
        assert self._reviewer_token_file is not None
        # Read every time: projected service-account tokens are rotated on disk by the kubelet.
        return self._reviewer_token_file.read_text(encoding="utf-8").strip()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=str(self._certificate_authority))
                if self._certificate_authority is not None
                else True
            )
            self._client = httpx.AsyncClient(verify=verify, timeout=self._timeout_seconds)
        return self._client

    def _remember(self, key: str, verdict: _Verdict) -> None:
        if len(self._verdicts) >= MAX_CACHED_TOKENS:
            now = time.monotonic()
            self._verdicts = {held: kept for held, kept in self._verdicts.items() if kept.expires_at > now}
            if len(self._verdicts) >= MAX_CACHED_TOKENS:
                self._verdicts.clear()
        self._verdicts[key] = verdict


def _bearer_token(authorization: str | None) -> str:
    if not authorization or authorization[: len(_BEARER_PREFIX)].lower() != _BEARER_PREFIX:
        raise UnauthenticatedError("missing bearer token (send 'Authorization: Bearer <token>')")
    token = authorization[len(_BEARER_PREFIX) :].strip()
    if token.count(".") != 2:  # service-account tokens are JWTs: header.payload.signature
        raise UnauthenticatedError("unknown bearer token")
    return token
