"""Bearer-token authentication: map an ``Authorization`` header to the principal that owns the token.

Tokens come from ``SLUICE_API_TOKENS`` (``principal=token`` pairs separated by commas) or from the file named by
``SLUICE_API_TOKENS_FILE`` (one ``principal=token`` pair per line, ``#`` comments), so that Kubernetes Secrets
can be mounted as files. Comparison is constant-time; tokens never appear in errors or logs.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sluice.core.errors import InvalidArgumentError, UnauthenticatedError

TOKENS_VARIABLE = "SLUICE_API_TOKENS"
TOKENS_FILE_VARIABLE = "SLUICE_API_TOKENS_FILE"
_BEARER_PREFIX = "bearer "


class BearerTokens:
    """The set of accepted tokens, each belonging to one principal (a user or service name)."""

    def __init__(self, principals_by_token: Mapping[str, str]) -> None:
        if not principals_by_token:
            raise InvalidArgumentError("at least one API token is required when authentication is enabled")
        for token, principal in principals_by_token.items():
            if not token or not principal:
                raise InvalidArgumentError("API tokens and principals must not be empty")
        self._principals_by_token = dict(principals_by_token)

    @classmethod
    def parse(cls, pairs: Iterable[str]) -> BearerTokens:
        """Build from ``principal=token`` strings (blank strings and ``#`` comments are skipped)."""
        principals_by_token: dict[str, str] = {}
        for raw in pairs:
            pair = raw.strip()
            if not pair or pair.startswith("#"):
                continue
            principal, separator, token = pair.partition("=")
            if not separator or not principal.strip() or not token.strip():
                raise InvalidArgumentError("API tokens must be given as principal=token")
            principals_by_token[token.strip()] = principal.strip()
        return cls(principals_by_token)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> BearerTokens | None:
        """Tokens configured in the environment, or ``None`` when authentication is not configured."""
        environment = os.environ if environ is None else environ
        file_name = environment.get(TOKENS_FILE_VARIABLE)
        if file_name:
            return cls.parse(Path(file_name).read_text(encoding="utf-8").splitlines())
        inline = environment.get(TOKENS_VARIABLE)
        if inline:
            return cls.parse(inline.split(","))
        return None

    def authenticate(self, authorization: str | None) -> str:
        """The principal owning the bearer token in an ``Authorization`` header value.

        Raises ``UnauthenticatedError`` when the header is missing, not a bearer token, or unknown."""
        if not authorization or not authorization[: len(_BEARER_PREFIX)].lower() == _BEARER_PREFIX:
            raise UnauthenticatedError("missing bearer token (send 'Authorization: Bearer <token>')")
        presented = authorization[len(_BEARER_PREFIX) :].strip().encode()
        principal: str | None = None
        for token, owner in self._principals_by_token.items():
            # Compare against every token so the time taken does not reveal which prefix matched.
            if hmac.compare_digest(token.encode(), presented):
                principal = owner
        if principal is None:
            raise UnauthenticatedError("unknown bearer token")
        return principal

    async def principal_of(self, authorization: str | None) -> str:
        """``authenticate`` as an ``Authenticator`` (``sluice.security.authentication``)."""
        return self.authenticate(authorization)
