"""``create_console_app``: the console's pages as one ASGI app, mounted by the REST API at ``/console``.

It has error pages of its own (HTML, not problem+json): an unauthenticated caller gets the login form
(401), a forbidden action 403, an unknown stream or group 404, bad input 400 with what was wrong. The
static files (a stylesheet and a few lines of JavaScript, no library) are served from the package.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sluice.console import group_pages, health_pages, login_pages, operations_pages, queue_pages, stream_pages
from sluice.console.authentication import ConsoleSession
from sluice.console.lag_history import LagHistory
from sluice.console.rendering import render
from sluice.core.errors import SluiceError, UnauthenticatedError
from sluice.rest.context import ServerContext
from sluice.rest.problems import status_for

logger = logging.getLogger(__name__)

STATIC_DIRECTORY = Path(__file__).parent / "static"


def create_console_app(context: ServerContext, *, lag_history: LagHistory | None = None) -> FastAPI:
    """The console over ``context`` (the REST API's store, authenticator and policy)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console_session = ConsoleSession(context)
    app.state.lag_history = lag_history or LagHistory()
    app.mount("/static", StaticFiles(directory=STATIC_DIRECTORY), name="static")
    for module in (login_pages, stream_pages, group_pages, queue_pages, operations_pages, health_pages):
        app.include_router(module.router)
    app.add_exception_handler(SluiceError, _sluice_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


async def _sluice_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SluiceError)
    if isinstance(error, UnauthenticatedError):
        return render(request, "login.html", title="Sign in", next=request.url.path, error=str(error), status=401)
    status = status_for(error)
    detail = str(error) if status < 500 else "the server could not do this now; the details are in its log"
    if status >= 500:
        logger.warning("console request failed", extra={"path": request.url.path, "error": str(error)})
    return render(request, "error.html", title="Error", status=status, code=error.code, detail=detail)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in entry['loc'][1:]) or 'request'}: {entry['msg']}" for entry in error.errors()
    ]
    return render(request, "error.html", title="Bad request", status=400, code="validation_error", problems=problems)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return render(request, "error.html", title="Error", status=error.status_code, code="", detail=str(error.detail))
