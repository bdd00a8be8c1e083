"""Consumer-group pages: members and their partitions, committed offset, head and lag per partition,
the lag chart (refreshed in place), offset resets behind a confirmation page, and the group's dead
letters with redrive and purge. Reading needs ``read`` on the stream; changing anything ``admin``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from sluice.console.forms import checked_form, first, integers
from sluice.console.lag_chart import LagChart, lag_chart
from sluice.console.lag_history import LagHistory, sample_of
from sluice.console.rendering import CONSOLE_PATH, CurrentViewer, Viewer, render
from sluice.core.errors import InvalidArgumentError
from sluice.rest.schemas import NAME_PATTERN
from sluice.security.permissions import Permission
from sluice.services.retries import group_dead_letters
from sluice.store.values.consumer_group_options import StartFrom, StartPosition
from sluice.store.values.consumer_groups import GroupDescription

logger = logging.getLogger(__name__)
router = APIRouter()

StreamName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200)]
GroupId = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200)]
DEAD_LETTERS_SHOWN = 100


def lag_history(request: Request) -> LagHistory:
    history: LagHistory = request.app.state.lag_history
    return history


def group_path(name: str, group: str) -> str:
    return f"{CONSOLE_PATH}/streams/{name}/groups/{group}"


async def _chart(request: Request, viewer: Viewer, name: str, group: str) -> tuple[GroupDescription, LagChart]:
    """The group's description now (also recorded as a lag sample) and its chart."""
    description = await viewer.store.consumer_groups().describe(name, group)
    history = lag_history(request)
    history.record(name, group, sample_of(description))
    return description, lag_chart(history.samples(name, group))


@router.get("/streams/{name}/groups/{group}")
async def group_page(request: Request, name: StreamName, group: GroupId, viewer: CurrentViewer) -> Response:
    description, chart = await _chart(request, viewer, name, group)
    viewer.require(Permission.READ, name, action="list dead letters of")
    letters = await group_dead_letters(viewer.context.store).list(name, group, limit=DEAD_LETTERS_SHOWN)
    return render(
        request,
        "group.html",
        viewer=viewer,
        title=f"{group} on {name}",
        stream_name=name,
        group=description,
        chart=chart,
        dead_letters=letters,
        may_admin=viewer.may_admin(name),
        done=request.query_params.get("done", ""),
    )


@router.get("/streams/{name}/groups/{group}/live")
async def group_live(request: Request, name: StreamName, group: GroupId, viewer: CurrentViewer) -> Response:
    """The lag chart, members and partitions alone, for the page to refresh in place."""
    description, chart = await _chart(request, viewer, name, group)
    return render(request, "group_live.html", viewer=viewer, stream_name=name, group=description, chart=chart)


def _reset_target(form: dict[str, list[str]]) -> StartPosition:
    """The reset's target from the form (InvalidArgumentError for a missing or bad value)."""
    to = first(form, "to") or ""
    try:
        start_from = StartFrom(to)
    except ValueError:
        raise InvalidArgumentError(f"reset to earliest, latest, offset or time, not {to[:40]!r}") from None
    if start_from is StartFrom.OFFSET:
        offsets = integers({"offset": [first(form, "offset") or "?"]}, "offset")
        if offsets[0] > 2**63 - 1:
            raise InvalidArgumentError("offset must be at most 2^63-1")
        return StartPosition(start_from=start_from, offset=offsets[0])
    if start_from is StartFrom.TIME:
        text = first(form, "time") or ""
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgumentError(
                f"time must be a date and time like 2026-01-31T12:00, got {text[:40]!r}"
            ) from None
        return StartPosition(start_from=start_from, time=moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return StartPosition(start_from=start_from)


@router.post("/streams/{name}/groups/{group}/reset-offset")
async def reset_offsets(request: Request, name: StreamName, group: GroupId, viewer: CurrentViewer) -> Response:
    """Without ``confirm=yes``: the confirmation page. With it: the reset, then back to the group."""
    form = await checked_form(request, viewer.session)
    viewer.require(Permission.ADMIN, name, action="reset offsets of")
    target = _reset_target(form)
    force = first(form, "force") == "on"
    if first(form, "confirm") != "yes":
        description = await viewer.store.consumer_groups().describe(name, group)
        return render(
            request,
            "confirm_reset.html",
            viewer=viewer,
            title=f"Reset {group}?",
            stream_name=name,
            group=description,
            target=target,
            form={key: values[0] for key, values in form.items() if values},
            force=force,
        )
    await viewer.store.consumer_groups().reset_offsets(name, group, to=target, force=force)
    logger.info(
        "consumer group offsets reset from the console",
        extra={"stream": name, "group": group, "to": target.start_from.value, "principal": viewer.principal},
    )
    return RedirectResponse(f"{group_path(name, group)}?done=reset", status_code=303)


@router.post("/streams/{name}/groups/{group}/dead-letters/{action}")
async def group_dead_letter_action(
    request: Request,
    name: StreamName,
    group: GroupId,
    action: Annotated[str, Path(pattern="^(redrive|purge)$")],
    viewer: CurrentViewer,
) -> Response:
    """Redrive or purge the chosen dead letters (all of them when none is chosen)."""
    form = await checked_form(request, viewer.session)
    viewer.require(Permission.ADMIN, name, action=f"{action} dead letters of")
    chosen = integers(form, "dead_letter_id") or None
    letters = group_dead_letters(viewer.context.store)
    if action == "redrive":
        count = len(await letters.redrive(name, group, dead_letter_ids=chosen))
    else:
        count = await letters.purge(name, group, dead_letter_ids=chosen)
    logger.info(
        f"group dead letters {action}d from the console",
        extra={"stream": name, "group": group, "count": count, "principal": viewer.principal},
    )
    return RedirectResponse(f"{group_path(name, group)}?done={action}", status_code=303)
