"""``/api/event-streams``: list, describe, create, reconfigure and delete streams; dead letters; stream health."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from sluice.core.errors import GroupNotFoundError
from sluice.core.streams import StreamConfig
from sluice.observability.health.model import StreamHealth
from sluice.rest.authentication import CallerStore, Principal
from sluice.rest.context import ServerContext, server_context
from sluice.rest.problems import problem_responses
from sluice.rest.schemas import (
    NAME_PATTERN,
    CreateStreamRequest,
    DeadLetterList,
    DeadLetterSelection,
    PurgeResult,
    RedriveResult,
    StreamDetail,
    StreamList,
    StreamSummary,
    UpdateStreamRequest,
    dead_letter_model,
    group_lag,
    stream_summary,
)
from sluice.security.authorized_services import CallerHealth
from sluice.store import EventStore
from sluice.store.values.consumer_groups import GroupDescription

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/event-streams", tags=["event streams"])

Context = Annotated[ServerContext, Depends(server_context)]
StreamNamePath = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=200, description="A stream or queue name.", examples=["orders"])
]
AUTH_ERRORS = (401, 403, 503)


@router.get("", summary="List streams and queues", responses=problem_responses(*AUTH_ERRORS))
async def list_streams(store: CallerStore) -> StreamList:
    return StreamList(streams=[stream_summary(info) for info in await store.list_streams()])


@router.get(
    "/{name}",
    summary="Describe a stream: configuration, head offsets, size, consumer groups with lag",
    responses=problem_responses(400, 404, 422, *AUTH_ERRORS),
)
async def describe_stream(name: StreamNamePath, store: CallerStore) -> StreamDetail:
    info = await store.get_stream(name)
    groups = await _groups_of(store, name)
    return StreamDetail(**stream_summary(info).model_dump(), consumer_groups=[group_lag(group) for group in groups])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a stream or queue (idempotent for an identical configuration)",
    responses=problem_responses(400, 409, 422, *AUTH_ERRORS),
)
async def create_stream(request: CreateStreamRequest, store: CallerStore, principal: Principal) -> StreamSummary:
    config = StreamConfig(
        name=request.name,
        type=request.type,
        partitions=request.partitions,
        max_attempts=request.max_attempts,
        delivery=request.delivery,
    )
    info = await store.create_stream(config)
    logger.info("stream created", extra={"stream": info.name, "principal": principal})
    return stream_summary(info)


@router.patch(
    "/{name}",
    summary="Change a stream's configuration (today: increase its partitions)",
    responses=problem_responses(400, 404, 409, 422, *AUTH_ERRORS),
)
async def update_stream(
    name: StreamNamePath, request: UpdateStreamRequest, store: CallerStore, principal: Principal
) -> StreamSummary:
    info = await store.get_stream(name)
    if request.partitions != info.partitions:
        info = await store.set_partitions(name, request.partitions)
        logger.info(
            "stream partitions changed",
            extra={"stream": name, "partitions": request.partitions, "principal": principal},
        )
    return stream_summary(info)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a stream or queue and all its data",
    responses=problem_responses(400, 404, 422, *AUTH_ERRORS),
)
async def delete_stream(name: StreamNamePath, store: CallerStore, principal: Principal) -> Response:
    await store.delete_stream(name)
    logger.info("stream deleted", extra={"stream": name, "principal": principal})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{name}/dead-letters/redrive",
    summary="Put dead letters (chosen, or all) back on the queue as new messages",
    responses=problem_responses(400, 404, 409, 422, *AUTH_ERRORS),
)
async def redrive_dead_letters(
    name: StreamNamePath, selection: DeadLetterSelection, store: CallerStore, principal: Principal
) -> RedriveResult:
    message_ids = await store.redrive_dead_letters(name, dead_letter_ids=selection.dead_letter_ids)
    logger.info("dead letters redriven", extra={"queue": name, "count": len(message_ids), "principal": principal})
    return RedriveResult(queue_name=name, message_ids=message_ids)


@router.post(
    "/{name}/dead-letters/purge",
    summary="Delete dead letters (chosen, or all) for good",
    responses=problem_responses(400, 404, 409, 422, *AUTH_ERRORS),
)
async def purge_dead_letters(
    name: StreamNamePath, selection: DeadLetterSelection, store: CallerStore, principal: Principal
) -> PurgeResult:
    purged = await store.purge_dead_letters(name, dead_letter_ids=selection.dead_letter_ids)
    logger.info("dead letters purged", extra={"queue": name, "count": purged, "principal": principal})
    return PurgeResult(queue_name=name, purged=purged)


@router.get(
    "/{name}/dead-letters",
    summary="List a queue's dead letters, oldest first",
    responses=problem_responses(400, 404, 409, 422, *AUTH_ERRORS),
)
async def list_dead_letters(
    name: StreamNamePath,
    store: CallerStore,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many dead letters.")] = 100,
) -> DeadLetterList:
    await store.get_stream(name)  # 404 for an unknown queue rather than an empty list
    letters = await store.dead_letters(name, limit=limit)
    return DeadLetterList(queue_name=name, dead_letters=[dead_letter_model(letter) for letter in letters])


@router.get(
    "/{name}/health",
    summary="The stream's health: consumer lag, stale consumers, dead-letter growth, database reachability",
    responses=problem_responses(400, 404, 422, 401, 403),
)
async def stream_health(name: StreamNamePath, context: Context, store: CallerStore) -> StreamHealth:
    return await CallerHealth(store).stream(
        name,
        thresholds=context.health.thresholds_for(name),
        probe_timeout=context.health.probe_timeout,
    )


async def _groups_of(store: EventStore, stream_name: str) -> list[GroupDescription]:
    reader = store.consumer_groups()
    groups = []
    for summary in await reader.list_groups():
        if summary.stream_name == stream_name:
            try:
                groups.append(await reader.describe(stream_name, summary.group_id))
            except GroupNotFoundError:
                continue  # deleted since it was listed
    return groups
