"""Open endpoints for probes and scrapers: ``/health/live``, ``/health/ready`` and ``/metrics``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from sluice.observability.health.checks import check_readiness
from sluice.observability.health.model import Readiness
from sluice.observability.metrics import METRICS_CONTENT_TYPE
from sluice.rest.context import ServerContext, server_context
from sluice.rest.schemas import Liveness

router = APIRouter(tags=["health and metrics"])
Context = Annotated[ServerContext, Depends(server_context)]


@router.get("/health/live", summary="Liveness: the process answers")
async def live() -> Liveness:
    return Liveness()


@router.get(
    "/health/ready",
    summary="Readiness: the database answers and its schema is at this version (memory: always)",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def ready(context: Context, response: Response) -> Readiness:
    readiness = await check_readiness(context.store, probe_timeout=context.health.probe_timeout)
    if not readiness.ready:
        response.status_code = 503
    return readiness


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"}},
)
async def metrics(context: Context) -> Response:
    return Response(content=context.metrics.render(), media_type=METRICS_CONTENT_TYPE)
