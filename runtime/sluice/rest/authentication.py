"""Authentication of ``/api`` requests (health and metrics stay open), and the store as the caller may use it.

The principal is put on ``request.state.principal`` for logs. Without a configured authenticator every
caller is ``anonymous``; the OpenAPI document declares the bearer scheme either way. ``CallerStore`` is
the store authorized for the request's principal by the app's access policy (the whole store without one);
``AppendingStore`` is the same with group commit (the app's ``AppendBatcher``) for appends.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sluice.rest.context import ServerContext, server_context
from sluice.security.authentication import ANONYMOUS
from sluice.store import EventStore

bearer_scheme = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`.")


async def authenticated_principal(
    request: Request,
    context: Annotated[ServerContext, Depends(server_context)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The caller's principal; raises UnauthenticatedError (answered as 401) for a missing or bad token."""
    principal = (
        ANONYMOUS if context.tokens is None else await context.tokens.principal_of(request.headers.get("authorization"))
    )
    request.state.principal = principal
    return principal


Principal = Annotated[str, Depends(authenticated_principal)]


async def caller_store(context: Annotated[ServerContext, Depends(server_context)], principal: Principal) -> EventStore:
    """The store as the request's principal may use it (a FastAPI dependency)."""
    return context.store_for(principal)


CallerStore = Annotated[EventStore, Depends(caller_store)]


async def appending_store(
    context: Annotated[ServerContext, Depends(server_context)], principal: Principal
) -> EventStore:
    """``CallerStore`` with group commit when the app has a batcher (a FastAPI dependency)."""
    return context.appending_store_for(principal)


AppendingStore = Annotated[EventStore, Depends(appending_store)]
