"""Authenticators: how the gRPC and REST doors turn an ``Authorization`` header into a principal.

An authenticator has one coroutine, ``principal_of(authorization)``, returning the principal or
raising UnauthenticatedError. ``BearerTokens`` (static API tokens) and ``TokenReviewAuthenticator``
(Kubernetes service-account tokens) are authenticators; ``AuthenticatorChain`` tries several in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sluice.core.errors import InvalidArgumentError, UnauthenticatedError

ANONYMOUS = "anonymous"
"""The principal of callers when no authenticator is configured (an access policy may grant it)."""


class Authenticator(Protocol):
    async def principal_of(self, authorization: str | None) -> str:
        """The principal presenting ``authorization`` (a header value); UnauthenticatedError if none."""
        ...


class AuthenticatorChain:
    """Tries each authenticator in order; the first that knows the credentials names the principal.

    Static API tokens usually come first: they are checked in memory, and only credentials they do
    not know cost a TokenReview."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        if not authenticators:
            raise InvalidArgumentError("an authenticator chain needs at least one authenticator")
        self._authenticators = tuple(authenticators)

    async def principal_of(self, authorization: str | None) -> str:
        refusal: UnauthenticatedError | None = None
        for authenticator in self._authenticators:
            try:
                return await authenticator.principal_of(authorization)
            except UnauthenticatedError as error:
                refusal = refusal or error
        assert refusal is not None
        raise refusal
