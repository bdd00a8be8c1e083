"""``create_app``: the REST management API as one FastAPI application over an EventStore.

``sluice serve`` runs it with uvicorn; its lifespan keeps the consumer-lag gauges fresh. The app
does not own the store: the caller opens it before and closes it after.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import RedirectResponse

from sluice.observability.health.model import HealthSettings
from sluice.observability.lag_refresher import DEFAULT_REFRESH_INTERVAL, LagRefresher
from sluice.observability.metrics import SluiceMetrics, default_metrics
from sluice.rest import (
    append_routes,
    group_dead_letter_routes,
    group_routes,
    health_routes,
    lifecycle_routes,
    replay_routes,
    saga_routes,
    stream_routes,
)
from sluice.rest.body_limit import BodyLimitMiddleware, default_body_limit
from sluice.rest.context import ServerContext
from sluice.rest.correlation_middleware import CorrelationMiddleware
from sluice.rest.problems import add_problem_schemas, install_problem_handlers
from sluice.rest.unexpected_errors import UnexpectedErrorMiddleware
from sluice.security.authentication import Authenticator
from sluice.security.policy import AccessPolicy
from sluice.services.group_commit import AppendBatcher
from sluice.store import EventStore

if TYPE_CHECKING:
    from sluice.console import LagHistory

API_TITLE = "Sluice management API"
API_VERSION = "1.0.0"
"""The version of the API contract (docs/openapi.json), changed only when the contract changes."""
API_DESCRIPTION = (
    "Manage Sluice event streams, queues and consumer groups. `/api` needs a bearer token when the server "
    "has tokens configured; `/health/*` and `/metrics` are open. Errors are `application/problem+json` with "
    "a stable `code`."
)


def create_app(
    store: EventStore,
    *,
    tokens: Authenticator | None = None,
    policy: AccessPolicy | None = None,
    health: HealthSettings | None = None,
    metrics: SluiceMetrics | None = None,
    lag_refresh_interval: timedelta | None = DEFAULT_REFRESH_INTERVAL,
    max_request_body_bytes: int | None = None,
    console: bool = True,
    lag_history: LagHistory | None = None,
    batcher: AppendBatcher | None = None,
) -> FastAPI:
    """The REST API over ``store``. ``tokens`` authenticates callers (``BearerTokens``, a
    ``TokenReviewAuthenticator`` or a chain; None disables authentication: development only); ``policy``
    authorizes each request (None: every authenticated caller may do everything);
    ``lag_refresh_interval=None`` leaves the lag gauges to someone else. Request bodies over
    ``max_request_body_bytes`` (default: the store's payload limit plus 1 MiB) are refused with 413 while
    they stream in. ``console`` mounts the web console at ``/console/`` (docs/console.md); its lag chart reads
    ``lag_history`` (filled by a ``sluice.console.LagSampler``; without one, by the console's own page views).
    ``batcher`` gives the append route group commit (``sluice serve`` passes the gRPC server's, so both doors
    share transactions; docs/group-commit.md); the app does not close it."""
    used_metrics = metrics or default_metrics

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if lag_refresh_interval is None:
            yield
            return
        async with LagRefresher(store, interval=lag_refresh_interval, metrics=used_metrics):
            yield

    app = FastAPI(
        title=API_TITLE,
        description=API_DESCRIPTION,
        version=API_VERSION,
        lifespan=lifespan,
    )
    context = ServerContext(
        store=store,
        tokens=tokens,
        health=health or HealthSettings(),
        metrics=used_metrics,
        policy=policy,
        batcher=batcher,
    )
    app.state.sluice = context
    install_problem_handlers(app)
    app.include_router(stream_routes.router)
    app.include_router(append_routes.router)
    app.include_router(group_routes.router)
    app.include_router(group_dead_letter_routes.router)
    app.include_router(replay_routes.router)
    app.include_router(saga_routes.router)
    app.include_router(lifecycle_routes.router)
    app.include_router(health_routes.router)
    if console:
        # Imported here: the console's pages use this package's context and schemas (an import cycle at load time).
        from sluice.console import create_console_app  # noqa: PLC0415

        app.add_api_route("/console", _to_console, include_in_schema=False)
        app.mount("/console", create_console_app(context, lag_history=lag_history))
    # The last added runs first: correlation id, then the body limit, then the 500 safety net.
    app.add_middleware(UnexpectedErrorMiddleware)
    body_limit = max_request_body_bytes or default_body_limit(store.options.max_payload_bytes)
    app.add_middleware(BodyLimitMiddleware, limit=body_limit)
    app.add_middleware(CorrelationMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_schemas(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _to_console() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)
