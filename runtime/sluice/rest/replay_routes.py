"""Replays: their progress (``GET /api/replays/{name}``) and cancellation (``POST /api/replays/{name}/cancel``).

Reading a replay needs ``read`` on its source stream, cancelling it ``admin`` there (when the server has
an access policy: checked by the caller's authorized store, ``sluice.security.authorized_services``). The
operator reads the same progress to fill a Replay's status.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from sluice.rest.authentication import CallerStore, Principal
from sluice.rest.problems import problem_responses
from sluice.security.authorized_services import CallerReplays
from sluice.services.replay import ReplayProgress, ReplayState, ReplayTargetKind
from sluice.store.values.replays import REPLAY_NAME_PATTERN

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/replays", tags=["replays"])

ReplayNamePath = Annotated[
    str, Path(pattern=f"^{REPLAY_NAME_PATTERN.pattern}$", max_length=330, examples=["default.rebuild-orders"])
]
ERRORS = problem_responses(401, 403, 404, 422, 503)


class ReplayPartitionBody(BaseModel):
    partition: int
    start_offset: int = Field(description="The first offset replayed.")
    next_offset: int = Field(description="Every offset below this one has been delivered.")
    end_offset: int = Field(description="The partition's head when the replay started (exclusive).")


class ReplayProgressBody(BaseModel):
    """A replay's progress."""

    name: str
    state: ReplayState
    stream: str = Field(description="The source stream.")
    target: ReplayTargetKind
    target_name: str | None
    events_done: int
    events_total: int = Field(description="Fixed when the replay started: the events up to the heads then.")
    percent: int = Field(ge=0, le=100)
    events_per_second: float | None = Field(description="The rate measured by the current (or last) run.")
    eta_seconds: float | None = Field(description="Time left at that rate, while running.")
    estimated_completion: datetime | None
    cancel_requested: bool
    error: str | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    partitions: list[ReplayPartitionBody]


def progress_body(progress: ReplayProgress) -> ReplayProgressBody:
    eta = progress.eta
    return ReplayProgressBody(
        name=progress.name,
        state=progress.state,
        stream=progress.request.stream,
        target=progress.request.target,
        target_name=progress.request.target_name,
        events_done=progress.events_done,
        events_total=progress.events_total,
        percent=progress.percent,
        events_per_second=progress.events_per_second,
        eta_seconds=eta.total_seconds() if eta is not None else None,
        estimated_completion=progress.estimated_completion,
        cancel_requested=progress.cancel_requested,
        error=progress.error,
        created_at=progress.created_at,
        started_at=progress.started_at,
        updated_at=progress.updated_at,
        finished_at=progress.finished_at,
        partitions=[
            ReplayPartitionBody(
                partition=partition.partition,
                start_offset=partition.start_offset,
                next_offset=partition.next_offset,
                end_offset=partition.end_offset,
            )
            for partition in progress.partitions
        ],
    )


@router.get("/{name}", summary="A replay's progress", response_model=ReplayProgressBody, responses=ERRORS)
async def replay_progress(name: ReplayNamePath, store: CallerStore) -> Any:
    return progress_body(await CallerReplays(store).progress(name))


@router.post(
    "/{name}/cancel",
    summary="Cancel a replay (a running one stops before its next batch)",
    response_model=ReplayProgressBody,
    responses=ERRORS,
)
async def cancel_replay(name: ReplayNamePath, store: CallerStore, principal: Principal) -> Any:
    cancelled = await CallerReplays(store).cancel(name)
    logger.info(
        "replay cancel requested", extra={"replay": name, "state": cancelled.state.value, "principal": principal}
    )
    return progress_body(cancelled)
