"""Who is looking at the console, and protection of its forms against cross-site requests.

A caller is authenticated like a REST API caller, by the same authenticator: with the
``Authorization`` header, or with the token it typed into the login form, which the console keeps in
an HttpOnly, SameSite=Strict cookie scoped to ``/console`` (a token never appears in a URL).

Every form that changes something carries a CSRF token, which must equal the random token the console
keeps in a second HttpOnly, SameSite=Strict cookie (the double-submit pattern: no server-side state,
so it works across the gateway's replicas); a POST without the right one is refused (403). A POST
whose ``Origin`` header names another site is refused as well.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from sluice.core.errors import PermissionDeniedError, SluiceError, UnauthenticatedError
from sluice.rest.context import ServerContext
from sluice.security.authentication import ANONYMOUS
from sluice.security.authorizer import Authorizer
from sluice.security.permissions import Permission

TOKEN_COOKIE = "sluice_console_token"  # noqa: S105  (the cookie's name, not a secret)
CSRF_COOKIE = "sluice_console_csrf"
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
    """How a request's caller is found, and the CSRF check of its forms."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context

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

    @staticmethod
    def csrf_token(request: Request) -> str:
        """The caller's CSRF token: its cookie's, or a new one that ``new_csrf_token`` says to set."""
        token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_token", None)
        if not token:
            token = request.state.new_csrf_token = secrets.token_hex(32)
        return str(token)

    @staticmethod
    def new_csrf_token(request: Request) -> str | None:
        """A token drawn for this request, to be set as the CSRF cookie of the answer."""
        token = getattr(request.state, "new_csrf_token", None)
        return None if token is None else str(token)

    @staticmethod
    def same_origin(request: Request) -> bool:
        """False when the request's ``Origin`` header names another site (True without one)."""
        origin = request.headers.get("origin")
        return not origin or urlsplit(origin).netloc == request.headers.get("host", "")

    def check_post(self, request: Request, submitted: str | None) -> None:
        """ForgedFormError (403) unless the form came from this console for this caller."""
        if not self.same_origin(request):
            raise ForgedFormError("this form was sent from another site")
        expected = request.cookies.get(CSRF_COOKIE)
        if not submitted or not expected or not hmac.compare_digest(submitted.encode(), expected.encode()):
            raise ForgedFormError("the form is missing its CSRF token or it has expired: reload the page")

    def may(self, principal: str, permission: Permission, stream_name: str) -> bool:
        """Whether the policy lets ``principal`` do it (everyone may, without a policy)."""
        policy = self.context.policy
        return policy is None or Authorizer(principal, policy).may(permission, stream_name)
