"""Queue pages: depth (waiting and in flight), dead letters with their attempts and failures, and
redrive and purge for callers with ``admin`` on the queue."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from sluice.console.forms import checked_form, integers
from sluice.console.rendering import CONSOLE_PATH, CurrentViewer, render
from sluice.core.errors import StreamTypeError
from sluice.core.streams import StreamType
from sluice.rest.schemas import NAME_PATTERN
from sluice.security.permissions import Permission

logger = logging.getLogger(__name__)
router = APIRouter()

QueueName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200)]
DEAD_LETTERS_SHOWN = 100


@router.get("/queues/{name}")
async def queue_page(request: Request, name: QueueName, viewer: CurrentViewer) -> Response:
    info = await viewer.store.get_stream(name)
    if info.type is not StreamType.EPHEMERAL:
        raise StreamTypeError(f"{name!r} is a persistent stream, not a queue")
    return render(
        request,
        "queue.html",
        viewer=viewer,
        title=name,
        queue=info,
        depth=await viewer.store.queue_depth(name),
        dead_letters=await viewer.store.dead_letters(name, limit=DEAD_LETTERS_SHOWN),
        may_admin=viewer.may_admin(name),
        done=request.query_params.get("done", ""),
    )


@router.post("/queues/{name}/dead-letters/{action}")
async def queue_dead_letter_action(
    request: Request,
    name: QueueName,
    action: Annotated[str, Path(pattern="^(redrive|purge)$")],
    viewer: CurrentViewer,
) -> Response:
    """Redrive or purge the chosen dead letters (all of them when none is chosen)."""
    form = await checked_form(request, viewer.session)
    viewer.require(Permission.ADMIN, name, action=f"{action} dead letters of")
    chosen = integers(form, "dead_letter_id") or None
    if action == "redrive":
        count = len(await viewer.store.redrive_dead_letters(name, dead_letter_ids=chosen))
    else:
        count = await viewer.store.purge_dead_letters(name, dead_letter_ids=chosen)
    logger.info(
        f"queue dead letters {action}d from the console",
        extra={"queue": name, "count": count, "principal": viewer.principal},
    )
    return RedirectResponse(f"{CONSOLE_PATH}/queues/{name}?done={action}", status_code=303)
