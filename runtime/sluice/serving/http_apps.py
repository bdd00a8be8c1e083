"""ASGI wrappers of the gateway's HTTP listeners.

``AppSwitch`` serves one app and can be pointed at another while serving (the waiting app until the
store opens, then the REST API). ``HealthOnly`` passes only ``/health/*`` to its app and answers every
other path 404: it is what the plain health port serves next to a TLS API port, so probes need no
certificate and no bearer token ever travels in clear.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sluice.rest.problems import problem_at

HEALTH_PREFIX = "/health/"


class AppSwitch:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class HealthOnly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = str(scope.get("path", "/"))
        if path.startswith(HEALTH_PREFIX):
            await self.app(scope, receive, send)
            return
        response = problem_at(
            path, status=404, code="not_found", detail="this port serves only /health/live and /health/ready"
        )
        await response(scope, receive, send)
