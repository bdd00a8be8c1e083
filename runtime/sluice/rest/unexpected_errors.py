"""ASGI middleware: an exception no handler knows becomes a 500 problem+json with a generic message.

The exception (class, message, traceback) is logged with the request's method and path; the caller sees
neither driver messages nor internal class names. Known errors never get here: FastAPI's exception
handlers (``problems.py``) answer them first.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.rest.problems import INTERNAL_ERROR_CODE, problem_at

logger = logging.getLogger(__name__)


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def noting_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except Exception:
            logger.exception("request %s %s failed unexpectedly", scope.get("method"), scope.get("path"))
            if response_started:
                raise
            response = problem_at(
                scope.get("path", "/"),
                status=500,
                code=INTERNAL_ERROR_CODE,
                detail="the server failed to answer this request; it was logged",
            )
            await response(scope, receive, send)
