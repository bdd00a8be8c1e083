"""ASGI middleware: each request runs inside a ``correlation_context``.

The id comes from the ``X-Correlation-ID`` request header when it is a sensible token (1 to 200
visible ASCII characters), else a new UUID; the answer echoes it in the same header, so a client
can find the logs and events of its request.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.observability.correlation import correlation_context

CORRELATION_HEADER = "x-correlation-id"
_ACCEPTED_ID = re.compile(r"[\x21-\x7e]{1,200}")


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = _requested_id(scope) or str(uuid.uuid4())

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (CORRELATION_HEADER.encode(), correlation_id.encode()),
                ]
            await send(message)

        with correlation_context(correlation_id):
            await self.app(scope, receive, send_with_header)


def _requested_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == CORRELATION_HEADER.encode():
            text = value.decode("latin-1")
            return text if _ACCEPTED_ID.fullmatch(text) else None
    return None
