"""Stream lifecycle over REST: archive, unarchive, soft delete, restore and purge.

``POST /api/event-streams/{name}/archive`` (and ``/unarchive``, ``/soft-delete``, ``/restore``) answers the
stream's lifecycle as it then is; ``GET /api/stream-lifecycle?include_deleted=true`` lists it for every stream,
soft-deleted ones included; ``POST /api/stream-lifecycle/purge-deleted`` removes the soft-deleted streams older
than the grace period (or ``older_than_seconds``) for good. The hard delete stays
``DELETE /api/event-streams/{name}``. Each change records the caller's principal as its actor.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from sluice.core.compression import Compression
from sluice.core.errors import StreamNotFoundError
from sluice.core.streams import StreamInfo, StreamType
from sluice.rest.authentication import CallerStore, Principal
from sluice.rest.problems import problem_responses
from sluice.rest.schemas import NAME_PATTERN

logger = logging.getLogger(__name__)
router = APIRouter(tags=["stream lifecycle"])
STREAMS = "/api/event-streams"
LIFECYCLE = "/api/stream-lifecycle"

StreamNamePath = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=200, description="A stream or queue name.", examples=["orders"])
]
AUTH_ERRORS = (401, 403, 503)
CHANGE_ERRORS = problem_responses(400, 404, 422, *AUTH_ERRORS)


class StreamLifecycle(BaseModel):
    """A stream's lifecycle state, who changed it and when, and how its payloads are stored."""

    name: str
    type: StreamType
    state: str = Field(description="active, archived (read-only) or deleted (soft: hidden, restorable).")
    compression: Compression
    compression_threshold: int = Field(description="Payloads over this many bytes are compressed.")
    created_at: datetime
    created_by: str | None
    archived_at: datetime | None
    archived_by: str | None
    deleted_at: datetime | None
    deleted_by: str | None


class StreamLifecycleList(BaseModel):
    streams: list[StreamLifecycle]


class PurgeDeletedResult(BaseModel):
    purged: list[str] = Field(description="The streams removed for good.")


def stream_lifecycle(info: StreamInfo) -> StreamLifecycle:
    """The lifecycle view of a stream."""
    state = "deleted" if info.deleted else "archived" if info.archived else "active"
    return StreamLifecycle(
        name=info.name,
        type=info.type,
        state=state,
        compression=info.compression,
        compression_threshold=info.compression_threshold,
        created_at=info.created_at,
        created_by=info.created_by,
        archived_at=info.archived_at,
        archived_by=info.archived_by,
        deleted_at=info.deleted_at,
        deleted_by=info.deleted_by,
    )


@router.get(
    LIFECYCLE, summary="List streams with their lifecycle state", responses=problem_responses(422, *AUTH_ERRORS)
)
async def list_lifecycles(
    store: CallerStore,
    include_deleted: Annotated[bool, Query(description="Also list soft-deleted streams.")] = False,
) -> StreamLifecycleList:
    found = await store.list_streams(include_deleted=include_deleted)
    return StreamLifecycleList(streams=[stream_lifecycle(info) for info in found])


@router.post(
    STREAMS + "/{name}/archive",
    summary="Archive a stream or queue: appends and enqueues are refused, reads and groups go on",
    responses=CHANGE_ERRORS,
)
async def archive_stream(name: StreamNamePath, store: CallerStore, principal: Principal) -> StreamLifecycle:
    info = await store.archive_stream(name, actor=principal)
    logger.info("stream archived", extra={"stream": name, "principal": principal})
    return stream_lifecycle(info)


@router.post(
    STREAMS + "/{name}/unarchive", summary="Make an archived stream or queue writable again", responses=CHANGE_ERRORS
)
async def unarchive_stream(name: StreamNamePath, store: CallerStore, principal: Principal) -> StreamLifecycle:
    info = await store.unarchive_stream(name, actor=principal)
    logger.info("stream unarchived", extra={"stream": name, "principal": principal})
    return stream_lifecycle(info)


@router.post(
    STREAMS + "/{name}/soft-delete",
    summary="Soft-delete a stream or queue: hidden and refusing writes, restorable for a grace period",
    responses=CHANGE_ERRORS,
)
async def soft_delete_stream(name: StreamNamePath, store: CallerStore, principal: Principal) -> StreamLifecycle:
    await store.delete_stream(name, soft=True, actor=principal)
    logger.info("stream soft-deleted", extra={"stream": name, "principal": principal})
    for info in await store.list_streams(include_deleted=True):
        if info.name == name:
            return stream_lifecycle(info)
    raise StreamNotFoundError(name)  # hard-deleted in the meantime


@router.post(
    STREAMS + "/{name}/restore",
    summary="Restore a soft-deleted stream or queue with its data (within the grace period)",
    responses=CHANGE_ERRORS,
)
async def restore_stream(name: StreamNamePath, store: CallerStore, principal: Principal) -> StreamLifecycle:
    info = await store.restore_stream(name, actor=principal)
    logger.info("stream restored", extra={"stream": name, "principal": principal})
    return stream_lifecycle(info)


@router.post(
    LIFECYCLE + "/purge-deleted",
    summary="Remove soft-deleted streams (and their data) for good",
    responses=problem_responses(400, 422, *AUTH_ERRORS),
)
async def purge_deleted_streams(
    store: CallerStore,
    principal: Principal,
    older_than_seconds: Annotated[
        float | None, Query(ge=0, le=10 * 365 * 86400, description="Default: the store's grace period.")
    ] = None,
) -> PurgeDeletedResult:
    age = None if older_than_seconds is None else timedelta(seconds=older_than_seconds)
    purged = await store.purge_deleted_streams(older_than=age)
    logger.info("deleted streams purged", extra={"streams": purged, "principal": principal})
    return PurgeDeletedResult(purged=purged)
