"""Bearer-token authentication of ``/api`` requests (health and metrics stay open).

The principal is put on ``request.state.principal`` for logs. Without configured tokens every
caller is ``anonymous``; the OpenAPI document declares the bearer scheme either way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sluice.rest.context import ServerContext, server_context

ANONYMOUS = "anonymous"

bearer_scheme = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`.")


async def authenticated_principal(
    request: Request,
    context: Annotated[ServerContext, Depends(server_context)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The caller's principal; raises UnauthenticatedError (answered as 401) for a missing or bad token."""
    principal = (
        ANONYMOUS if context.tokens is None else context.tokens.authenticate(request.headers.get("authorization"))
    )
    request.state.principal = principal
    return principal


Principal = Annotated[str, Depends(authenticated_principal)]
