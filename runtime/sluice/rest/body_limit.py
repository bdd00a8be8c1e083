"""ASGI middleware: refuse request bodies over a limit while they stream in, with 413 problem+json.

A declared ``Content-Length`` over the limit is refused before the application runs (nothing of the body is
read). A chunked body (or one that turns out longer than declared) is counted as it arrives: the read that
passes the limit raises ``RequestBodyTooLargeError``, which FastAPI re-raises as the HTTP error it is, so at
most the limit plus one chunk is ever held in memory. Without this, the whole body is read and parsed before
the store's payload check (issue 16: one 100 MB body took the server to ~490 MiB).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.core.errors import PayloadTooLargeError
from sluice.rest.problems import problem_at

ONE_MEBIBYTE = 1024 * 1024
ENVELOPE_ALLOWANCE_BYTES = ONE_MEBIBYTE
"""Room above the store's payload limit for the JSON envelope, metadata and escaping."""


def default_body_limit(max_payload_bytes: int) -> int:
    """The default limit: a little above what one payload may be."""
    return max_payload_bytes + ENVELOPE_ALLOWANCE_BYTES


class RequestBodyTooLargeError(HTTPException):
    """The request body passed the limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_detail(limit))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise RequestBodyTooLargeError(self.limit)
            return message

        async def noting_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, noting_send)
        except RequestBodyTooLargeError:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Connection: close, so the server does not read (and discard) the rest of the body.
        response = problem_at(
            scope.get("path", "/"),
            status=413,
            code=PayloadTooLargeError.code,
            detail=_detail(self.limit),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _detail(limit: int) -> str:
    return f"the request body is over the limit of {limit} bytes"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
