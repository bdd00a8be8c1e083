"""Signing in and out: the login form takes an API token and keeps it in an HttpOnly cookie."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from sluice.console.authentication import TOKEN_COOKIE, ForgedFormError
from sluice.console.forms import first, read_form
from sluice.console.rendering import CONSOLE_PATH, console_session, render
from sluice.core.errors import UnauthenticatedError

logger = logging.getLogger(__name__)
router = APIRouter()


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if path and path.startswith(f"{CONSOLE_PATH}/") and not path.startswith("//") and "\\" not in path:
        return path
    return f"{CONSOLE_PATH}/"


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", title="Sign in", next=safe_next(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request) -> Response:
    session = console_session(request)
    form = await read_form(request)
    origin = request.headers.get("origin")
    if origin and not session.same_origin(request):
        logger.warning("console sign-in from another site refused", extra={"origin": origin})
        raise ForgedFormError("this form was sent from another site")
    token = (first(form, "token") or "").strip()
    target = safe_next(first(form, "next"))
    try:
        principal = await session.principal_of_token(token)
    except UnauthenticatedError as error:
        return render(request, "login.html", title="Sign in", next=target, error=str(error), status=401)
    logger.info("console sign-in", extra={"principal": principal})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=CONSOLE_PATH,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = console_session(request)
    form = await read_form(request)
    session.check_post(request, first(form, "csrf_token"))
    response = RedirectResponse(f"{CONSOLE_PATH}/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path=CONSOLE_PATH)
    return response
