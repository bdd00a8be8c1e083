"""Consumer groups: list, describe, reset offsets and delete, under ``/api/event-streams/{name}/groups``,
plus the reset-offset path of the seed framework (``/api/event-streams/subscriptions/{id}/consumers/...``)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from sluice.core.errors import GroupNotFoundError, InvalidArgumentError
from sluice.rest.authentication import CallerStore, Principal
from sluice.rest.problems import problem_responses
from sluice.rest.schemas import (
    NAME_PATTERN,
    GroupDetail,
    GroupList,
    ResetOffsetRequest,
    SubscriptionResetOffsetRequest,
    group_detail,
    group_lag,
)
from sluice.store.values.consumer_group_options import StartFrom, StartPosition

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/event-streams", tags=["consumer groups"])

StreamNamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200, examples=["orders"])]
GroupIdPath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200, examples=["email"])]
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 503)
READ_ERRORS = problem_responses(400, 401, 403, 404, 422, 503)


def start_position(request: ResetOffsetRequest) -> StartPosition:
    """The runtime's StartPosition for a reset request (InvalidArgumentError when a field is missing)."""
    return StartPosition(start_from=StartFrom(request.to.value), offset=request.offset, time=request.time)


@router.get("/{name}/groups", summary="List a stream's consumer groups with their lag", responses=READ_ERRORS)
async def list_groups(name: StreamNamePath, store: CallerStore) -> GroupList:
    await store.get_stream(name)
    reader = store.consumer_groups()
    groups = []
    for summary in await reader.list_groups():
        if summary.stream_name == name:
            try:
                groups.append(group_lag(await reader.describe(name, summary.group_id)))
            except GroupNotFoundError:
                continue  # deleted since it was listed
    return GroupList(groups=groups)


@router.get(
    "/{name}/groups/{group}",
    summary="Describe a consumer group: members, assignments, committed offsets and lag per partition",
    responses=READ_ERRORS,
)
async def describe_group(name: StreamNamePath, group: GroupIdPath, store: CallerStore) -> GroupDetail:
    return group_detail(await store.consumer_groups().describe(name, group))


@router.post(
    "/{name}/groups/{group}/reset-offset",
    summary="Move a consumer group's committed offsets (refused while members are active unless force)",
    responses=WRITE_ERRORS,
)
async def reset_group_offsets(
    name: StreamNamePath, group: GroupIdPath, request: ResetOffsetRequest, store: CallerStore, principal: Principal
) -> GroupDetail:
    target = start_position(request)
    description = await store.consumer_groups().reset_offsets(name, group, to=target, force=request.force)
    logger.info(
        "consumer group offsets reset",
        extra={"stream": name, "group": group, "to": request.to.value, "force": request.force, "principal": principal},
    )
    return group_detail(description)


@router.delete(
    "/{name}/groups/{group}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a consumer group and its offsets (refused while members are active unless force)",
    responses=WRITE_ERRORS,
)
async def delete_group(
    name: StreamNamePath,
    group: GroupIdPath,
    store: CallerStore,
    principal: Principal,
    force: Annotated[bool, Query(description="Delete even with active members (they are fenced).")] = False,
) -> Response:
    await store.consumer_groups().delete(name, group, force=force)
    logger.info(
        "consumer group deleted", extra={"stream": name, "group": group, "force": force, "principal": principal}
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/subscriptions/{id}/consumers/{consumerId}/reset-offset",
    summary="Reset a subscription's offsets (the seed framework's path: id is the consumer group id)",
    responses=WRITE_ERRORS,
)
async def reset_subscription_offsets(
    group: Annotated[str, Path(alias="id", pattern=NAME_PATTERN, max_length=200, examples=["email"])],
    consumer_id: Annotated[str, Path(alias="consumerId", pattern=NAME_PATTERN, max_length=200, examples=["worker-1"])],
    request: SubscriptionResetOffsetRequest,
    store: CallerStore,
    principal: Principal,
) -> GroupDetail:
    reader = store.consumer_groups()
    stream_name = request.stream
    if stream_name is None:
        streams = sorted({summary.stream_name for summary in await reader.list_groups() if summary.group_id == group})
        if not streams:
            raise GroupNotFoundError("(any)", group)
        if len(streams) > 1:
            raise InvalidArgumentError(
                f"consumer group {group!r} exists on several streams {streams}: name one in the 'stream' field"
            )
        stream_name = streams[0]
    target = start_position(request)
    description = await reader.reset_offsets(stream_name, group, to=target, force=request.force)
    logger.info(
        "subscription offsets reset",
        extra={
            "stream": stream_name,
            "group": group,
            "consumer_id": consumer_id,
            "to": request.to.value,
            "force": request.force,
            "principal": principal,
        },
    )
    return group_detail(description)
