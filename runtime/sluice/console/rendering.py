"""The templates, their filters, and ``Viewer``: the caller of a console request with what it may see.

Templates are Jinja2 with autoescaping on: every value from the store (event payloads, error texts,
names) is escaped where it is written into a page.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from sluice.console.authentication import CSRF_COOKIE, CSRF_FIELD, ConsoleSession
from sluice.rest.context import ServerContext
from sluice.security.permissions import Permission
from sluice.store import EventStore

CONSOLE_PATH = "/console"
TEMPLATE_DIRECTORY = Path(__file__).parent / "templates"


def pretty_json(value: Any) -> str:
    """A payload or metadata as indented JSON (bytes are shown as their length)."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes of binary data>"
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def moment(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


templates = Jinja2Templates(directory=str(TEMPLATE_DIRECTORY))
templates.env.filters["pretty_json"] = pretty_json
templates.env.filters["moment"] = moment
templates.env.filters["duration"] = duration
templates.env.globals["console"] = CONSOLE_PATH
templates.env.globals["csrf_field"] = CSRF_FIELD


def console_session(request: Request) -> ConsoleSession:
    session: ConsoleSession = request.app.state.console_session
    return session


@dataclasses.dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller of one request: the store as it may use it, and its CSRF token."""

    principal: str
    store: EventStore
    session: ConsoleSession
    csrf_token: str

    @property
    def context(self) -> ServerContext:
        return self.session.context

    def may_admin(self, stream_name: str) -> bool:
        return self.session.may(self.principal, Permission.ADMIN, stream_name)

    def may_read(self, stream_name: str) -> bool:
        return self.session.may(self.principal, Permission.READ, stream_name)

    def require(self, permission: Permission, stream_name: str, *, action: str) -> None:
        """PermissionDeniedError (logged for audit) unless the policy allows it."""
        self.context.authorize(self.principal, permission, stream_name, action=action)


async def current_viewer(request: Request) -> Viewer:
    """The request's viewer (a FastAPI dependency); UnauthenticatedError when it has no valid token."""
    session = console_session(request)
    principal = await session.principal(request)
    request.state.principal = principal
    return Viewer(
        principal=principal,
        store=session.context.store_for(principal),
        session=session,
        csrf_token=session.csrf_token(request),
    )


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


def render(
    request: Request, template: str, *, viewer: Viewer | None = None, status: int = 200, **values: Any
) -> Response:
    """The page ``template`` with ``values``, the viewer and the navigation."""
    page_values = {"viewer": viewer, "status_code": status, **values}
    response = templates.TemplateResponse(request, template, page_values, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    new_token = ConsoleSession.new_csrf_token(request)
    if new_token is not None:
        response.set_cookie(
            CSRF_COOKIE,
            new_token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=CONSOLE_PATH,
        )
    return response
