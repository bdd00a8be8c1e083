"""A consumer group's dead letters: list, inspect, redrive (to that group only) and purge, under
``/api/event-streams/{name}/groups/{group}/dead-letters``. See docs/dead-letters.md.

Access: listing and inspecting need ``read`` on the stream, redrive and purge ``admin`` (as for a
queue's dead letters), checked by the caller's authorized store (``sluice.security.authorized_services``);
denials are PermissionDeniedError (403), logged for audit by the authorizer.
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from sluice.core.events import JSON_CONTENT_TYPE
from sluice.rest.authentication import CallerStore, Principal
from sluice.rest.problems import problem_responses
from sluice.rest.schemas import NAME_PATTERN, DeadLetterSelection
from sluice.security.authorized_services import CallerGroupDeadLetters
from sluice.services.retries import GroupDeadLetter

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/event-streams", tags=["consumer group dead letters"])

StreamNamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200, examples=["orders"])]
GroupIdPath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200, examples=["email"])]
DeadLetterIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[1])]
READ_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 503)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 503)
PREFIX = "/{name}/groups/{group}/dead-letters"


class GroupDeadLetterModel(BaseModel):
    """An event the group gave up on, as it was stored, with its failure history."""

    dead_letter_id: int
    stream: str
    group: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    schema_version: int
    content_type: str
    data: Any = Field(default=None, description="The payload as JSON; null for binary payloads (see data_base64).")
    data_base64: str | None = Field(default=None, description="Binary payloads, base64-encoded.")
    metadata: dict[str, Any]
    correlation_id: str | None
    appended_at: datetime
    error: str = Field(description="The last failure.")
    attempts: int = Field(description="Failed deliveries, over the first burial and any failed redrives.")
    first_failure_at: datetime
    last_failure_at: datetime
    dead_lettered_at: datetime
    dead_letter_stream: str
    consumer_id: str = Field(description="The member that buried it last.")
    redrives: int
    redrive_requested_at: datetime | None = Field(description="Set while it waits to be delivered to the group again.")


class GroupDeadLetterList(BaseModel):
    stream: str
    group: str
    dead_letters: list[GroupDeadLetterModel]


class GroupRedriveResult(BaseModel):
    stream: str
    group: str
    dead_letter_ids: list[int] = Field(description="The dead letters now waiting to be delivered to the group again.")


class GroupPurgeResult(BaseModel):
    stream: str
    group: str
    purged: int


def group_dead_letter_model(letter: GroupDeadLetter) -> GroupDeadLetterModel:
    binary = letter.content_type != JSON_CONTENT_TYPE
    return GroupDeadLetterModel(
        dead_letter_id=letter.dead_letter_id,
        stream=letter.stream_name,
        group=letter.group_id,
        partition=letter.partition,
        offset=letter.offset,
        event_id=str(letter.event_id),
        event_type=letter.event_type,
        schema_version=letter.schema_version,
        content_type=letter.content_type,
        data=None if binary else letter.data,
        data_base64=base64.b64encode(letter.payload).decode() if binary else None,
        metadata=dict(letter.metadata),
        correlation_id=letter.correlation_id,
        appended_at=letter.appended_at,
        error=letter.error,
        attempts=letter.attempts,
        first_failure_at=letter.first_failure_at,
        last_failure_at=letter.last_failure_at,
        dead_lettered_at=letter.dead_lettered_at,
        dead_letter_stream=letter.dead_letter_stream,
        consumer_id=letter.consumer_id,
        redrives=letter.redrives,
        redrive_requested_at=letter.redrive_requested_at,
    )


@router.get(PREFIX, summary="List a consumer group's dead letters, oldest first", responses=READ_ERRORS)
async def list_group_dead_letters(
    *,
    name: StreamNamePath,
    group: GroupIdPath,
    store: CallerStore,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many dead letters.")] = 100,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Only ids above this (paging).")] = 0,
) -> GroupDeadLetterList:
    letters = await CallerGroupDeadLetters(store).list(name, group, limit=limit, after_id=after_id)
    return GroupDeadLetterList(
        stream=name, group=group, dead_letters=[group_dead_letter_model(letter) for letter in letters]
    )


@router.get(
    PREFIX + "/{dead_letter_id}",
    summary="Inspect one dead letter of a consumer group: the original event, the error, attempts and times",
    responses=READ_ERRORS,
    response_model=GroupDeadLetterModel,
)
async def get_group_dead_letter(
    *,
    name: StreamNamePath,
    group: GroupIdPath,
    dead_letter_id: DeadLetterIdPath,
    store: CallerStore,
) -> GroupDeadLetterModel:
    letter = await CallerGroupDeadLetters(store).get(name, group, dead_letter_id)
    return group_dead_letter_model(letter)


@router.post(
    PREFIX + "/redrive",
    summary="Deliver dead letters (chosen, or all) to this consumer group again (no other group sees them)",
    responses=WRITE_ERRORS,
)
async def redrive_group_dead_letters(
    name: StreamNamePath, group: GroupIdPath, selection: DeadLetterSelection, store: CallerStore, principal: Principal
) -> GroupRedriveResult:
    redriven = await CallerGroupDeadLetters(store).redrive(name, group, dead_letter_ids=selection.dead_letter_ids)
    logger.info(
        "group dead letters redriven",
        extra={"stream": name, "group": group, "count": len(redriven), "principal": principal},
    )
    return GroupRedriveResult(stream=name, group=group, dead_letter_ids=redriven)


@router.post(
    PREFIX + "/purge",
    summary="Delete dead letters (chosen, or all) of a consumer group for good",
    responses=WRITE_ERRORS,
)
async def purge_group_dead_letters(
    name: StreamNamePath, group: GroupIdPath, selection: DeadLetterSelection, store: CallerStore, principal: Principal
) -> GroupPurgeResult:
    purged = await CallerGroupDeadLetters(store).purge(name, group, dead_letter_ids=selection.dead_letter_ids)
    logger.info(
        "group dead letters purged", extra={"stream": name, "group": group, "count": purged, "principal": principal}
    )
    return GroupPurgeResult(stream=name, group=group, purged=purged)
