"""The operations page: replays with their progress, retention policies and when they last ran, saga
instances with their steps and compensations, and a projection's status looked up by name.

Each is filtered by the access policy as the REST API filters it: a replay by ``read`` on its source
stream, a saga by ``read`` on ``saga.<name>``, a projection by ``read`` on every source stream.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from sluice.console.rendering import CurrentViewer, render
from sluice.console.stream_views import retention_policies
from sluice.core.errors import ProjectionNotFoundError
from sluice.rest.schemas import NAME_PATTERN
from sluice.security.authorized_services import saga_resource
from sluice.services.projections.status import ProjectionStatus, projection_status
from sluice.services.replay import Replays
from sluice.services.sagas.repositories import saga_repository

router = APIRouter()

SAGAS_SHOWN = 50


@router.get("/operations")
async def operations_page(
    request: Request,
    viewer: CurrentViewer,
    projection: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=200)] = None,
) -> Response:
    store = viewer.context.store
    replays = [progress for progress in await Replays(store).list() if viewer.may_read(progress.request.stream)]
    sagas = [
        instance
        for instance in await saga_repository(store).list(limit=SAGAS_SHOWN)
        if viewer.may_read(saga_resource(instance.saga_name))
    ]
    policies = await retention_policies(store)
    status: ProjectionStatus | None = None
    missing = False
    if projection:
        try:
            status = await projection_status(store, projection)
        except ProjectionNotFoundError:
            missing = True
        if status is not None and not all(viewer.may_read(source) for source in status.sources):
            status, missing = None, True  # what the caller may not read does not exist for it
    return render(
        request,
        "operations.html",
        viewer=viewer,
        title="Replays, retention, projections and sagas",
        replays=replays,
        sagas=sagas,
        policies=policies,
        projection_name=projection or "",
        projection=status,
        projection_missing=missing,
    )
