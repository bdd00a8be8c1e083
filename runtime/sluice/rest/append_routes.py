"""``POST /api/event-streams/{name}/events``: append events over HTTP, for clients without gRPC.

The same append as the library's (all or none, idempotent by event id, optimistic concurrency with
``expectedOffset``), made as the request's principal: without write permission on the stream the answer is
403 and nothing is stored.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sluice.core.events import EventData
from sluice.rest.authentication import AppendingStore, Principal
from sluice.rest.problems import problem_responses
from sluice.rest.schemas import MAX_OFFSET, NAME_PATTERN

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/event-streams", tags=["event streams"])

MAXIMUM_EVENTS_PER_REQUEST = 1000
StreamNamePath = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=200, description="A persistent stream.", examples=["orders"])
]


class _CamelModel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)


class NewEvent(_CamelModel):
    """One event to append."""

    type: str = Field(min_length=1, max_length=200, description="The event type, such as OrderPlaced.")
    data: Any = Field(description="The payload: any JSON value.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    id: uuid.UUID | None = Field(default=None, description="Makes the append idempotent: a stream stores each id once.")


class AppendRequest(_CamelModel):
    """Events appended together: all or none."""

    events: list[NewEvent] = Field(min_length=1, max_length=MAXIMUM_EVENTS_PER_REQUEST)
    expected_offset: int | None = Field(
        default=None,
        ge=0,
        le=MAX_OFFSET - 1,
        description="The offset of the last event the caller has seen (409 if another is there).",
    )
    partition_key: str | None = Field(default=None, min_length=1, max_length=500)
    correlation_id: str | None = Field(default=None, min_length=1, max_length=200)


class AppendAnswer(_CamelModel):
    """Where the events went."""

    stream: str
    partitions: list[int]
    offsets: list[int]
    deduplicated: bool = Field(description="True when the stream already held these event ids (nothing was stored).")


@router.post(
    "/{name}/events",
    status_code=status.HTTP_201_CREATED,
    summary="Append events to a persistent stream (all or none; needs write permission)",
    responses=problem_responses(400, 404, 409, 413, 422, 401, 403, 503),
)
async def append_events(
    name: StreamNamePath, request: AppendRequest, store: AppendingStore, principal: Principal
) -> AppendAnswer:
    events = [
        EventData(event.type, event.data, metadata=event.metadata, event_id=event.id or uuid.uuid4())
        for event in request.events
    ]
    result = await store.append(
        name,
        events,
        expected_offset=request.expected_offset,
        correlation_id=request.correlation_id,
        partition_key=request.partition_key,
    )
    logger.debug("events appended", extra={"stream": name, "count": len(events), "principal": principal})
    return AppendAnswer(
        stream=name,
        partitions=list(result.partitions),
        offsets=list(result.offsets),
        deduplicated=result.deduplicated,
    )
