"""Who is looking at the console, and protection of its forms against cross-site requests.

A caller is authenticated like a REST API caller, by the same authenticator: with the
``Authorization`` header, or with the token it typed into the login form, which the console keeps in
an HttpOnly, SameSite=Strict cookie scoped to ``/console`` (a token never appears in a URL).

Every form that changes something carries a CSRF token: an HMAC, under a key drawn when the console
starts, of the caller's credential; a POST without the right one is refused (403). A POST whose
``Origin`` header names another site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from sluice.errors import PermissionDeniedError, SluiceError, UnauthenticatedError
from sluice.rest.context import ServerContext
from sluice.security.authentication import ANONYMOUS
from sluice.security.authorizer import Authorizer
from sluice.security.permissions import Permission

TOKEN_COOKIE = "sluice_console_token"  # noqa: S105  (the cookie's name, not a secret)
CSRF_FIELD = "csrf_token"
MAX_TOKEN_LENGTH = 8192


class ForgedFormError(PermissionDeniedError):
    """A console form came without its CSRF token, with a wrong one, or from another site (403)."""

    code = "csrf_check_failed"

    def __init__(self, detail: str) -> None:
        SluiceError.__init__(self, detail)
        self.principal = ""
        self.action = "post"
        self.resource = "console form"


class ConsoleSession:
    """The CSRF key of one console (one process), and how a request's caller is found."""

    def __init__(self, context: ServerContext, *, csrf_key: bytes | None = None) -> None:
        self.context = context
        self._csrf_key = csrf_key or secrets.token_bytes(32)

    def credential(self, request: Request) -> str | None:
        """The ``Authorization`` header, else ``Bearer <cookie>``, else None."""
        header = request.headers.get("authorization")
        if header:
            return header
        token = request.cookies.get(TOKEN_COOKIE)
        return f"Bearer {token}" if token else None

    async def principal(self, request: Request) -> str:
        """The caller's principal; UnauthenticatedError (the console answers with its login page) if none."""
        tokens = self.context.tokens
        if tokens is None:
            return ANONYMOUS
        return await tokens.principal_of(self.credential(request))

    async def principal_of_token(self, token: str) -> str:
        """The principal of a token typed into the login form; UnauthenticatedError if unknown."""
        if self.context.tokens is None:
            return ANONYMOUS
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise UnauthenticatedError("enter an API token")
        return await self.context.tokens.principal_of(f"Bearer {token}")

    def csrf_token(self, request: Request) -> str:
        credential = (self.credential(request) or "").encode()
        return hmac.new(self._csrf_key, credential, hashlib.sha256).hexdigest()

    def check_post(self, request: Request, submitted: str | None) -> None:
        """PermissionDeniedError unless the form came from this console for this caller."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise ForgedFormError("this form was sent from another site")
        if not submitted or not hmac.compare_digest(submitted, self.csrf_token(request)):
            raise ForgedFormError("the form is missing its CSRF token or it has expired: reload the page")

    def may(self, principal: str, permission: Permission, stream_name: str) -> bool:
        """Whether the policy lets ``principal`` do it (everyone may, without a policy)."""
        policy = self.context.policy
        return policy is None or Authorizer(principal, policy).may(permission, stream_name)
