"""The REST answers of a gateway whose database is not ready yet (unreachable, starting or not migrated).

``/health/live`` answers (the process is fine: restarting it would not help), ``/health/ready`` answers 503
with the reason, ``/metrics`` is served, and every other path is a 503 problem+json
(``database_unavailable``, with ``Retry-After``). ``sluice serve`` switches to the full API once the store
opens.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sluice.observability.health.model import Readiness
from sluice.observability.metrics import METRICS_CONTENT_TYPE, SluiceMetrics, default_metrics
from sluice.rest.problems import (
    DATABASE_UNAVAILABLE_CODE,
    RETRY_AFTER_SECONDS,
    install_problem_handlers,
    problem_response,
)
from sluice.rest.schemas import Liveness

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_waiting_app(reason: Callable[[], str], *, metrics: SluiceMetrics | None = None) -> FastAPI:
    """The app served until the store opens; ``reason`` says why it has not yet (for ``/health/ready``)."""
    used_metrics = metrics or default_metrics
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_problem_handlers(app)

    @app.get("/health/live")
    async def live() -> Liveness:
        return Liveness()

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        readiness = Readiness(ready=False, backend="postgresql", detail=reason())
        return JSONResponse(readiness.model_dump(mode="json"), status_code=503)

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(content=used_metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @app.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
    async def unavailable(request: Request) -> JSONResponse:
        return problem_response(
            request,
            status=503,
            code=DATABASE_UNAVAILABLE_CODE,
            detail="the server is waiting for its database; retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return app
