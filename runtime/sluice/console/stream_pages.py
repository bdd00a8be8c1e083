"""Stream pages: the list of streams, a stream's page (partitions, groups, a paged event browser by
offset or time, correlation-id search) and its live tail as server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response, StreamingResponse

from sluice.console.rendering import CONSOLE_PATH, CurrentViewer, render
from sluice.console.stream_views import (
    EventView,
    StreamRow,
    event_view,
    groups_of,
    retention_of,
    retention_policies,
)
from sluice.core.errors import InvalidArgumentError
from sluice.core.events import Direction, RecordedEvent
from sluice.core.streams import StreamInfo, StreamType
from sluice.rest.schemas import NAME_PATTERN
from sluice.store import EventStore

router = APIRouter()

StreamName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=200)]
MAX_OFFSET = 2**63 - 1
PAGE_SIZE = 25
SEARCH_SCAN_LIMIT = 10_000
"""Correlation-id search reads at most this many of the newest events per partition."""
SEARCH_RESULTS = 100
TAIL_HEARTBEAT_SECONDS = 15.0


@router.get("/")
async def streams_page(request: Request, viewer: CurrentViewer) -> Response:
    streams = await viewer.store.list_streams()
    policies = await retention_policies(viewer.context.store)
    rows = [
        StreamRow(info=info, retention=retention_of(policies, info.name), may_admin=viewer.may_admin(info.name))
        for info in streams
    ]
    return render(request, "streams.html", viewer=viewer, streams=rows, title="Streams")


@router.get("/streams/{name}")
async def stream_page(
    *,
    request: Request,
    name: StreamName,
    viewer: CurrentViewer,
    partition: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    time: datetime | None = None,
    correlation_id: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    info = await viewer.store.get_stream(name)
    if info.type is StreamType.EPHEMERAL:
        return await _queue_redirect(name)
    if partition >= info.partitions:
        raise InvalidArgumentError(f"stream {name!r} has partitions 0 to {info.partitions - 1}, not {partition}")
    head = info.partition_heads[partition]
    if offset is not None and offset > head.head:
        raise InvalidArgumentError(
            f"offset {offset} is past partition {partition}'s head {head.head}: "
            f"offsets {head.first_offset} to {max(head.head - 1, head.first_offset)} are stored"
        )
    policies = await retention_policies(viewer.context.store)
    row = StreamRow(info=info, retention=retention_of(policies, name), may_admin=viewer.may_admin(name))
    if correlation_id:
        events = await _search(viewer.store, info, correlation_id)
        start = None
    else:
        start = offset if offset is not None else (None if time else max(head.first_offset, head.head - PAGE_SIZE))
        events = await _page(viewer.store, name, partition=partition, offset=start, time=time)
    return render(
        request,
        "stream.html",
        viewer=viewer,
        title=name,
        stream=row,
        partition=partition,
        head=head,
        start=start,
        time=time,
        page_size=PAGE_SIZE,
        events=events,
        correlation_id=correlation_id or "",
        search_limit=SEARCH_SCAN_LIMIT,
        groups=await groups_of(viewer.store, name),
    )


async def _queue_redirect(name: str) -> Response:
    return Response(status_code=303, headers={"Location": f"{CONSOLE_PATH}/queues/{name}"})


async def _page(
    store: EventStore, name: str, *, partition: int, offset: int | None, time: datetime | None
) -> list[EventView]:
    events = store.read_stream(name, partition=partition, from_offset=offset, from_time=time, limit=PAGE_SIZE)
    return [event_view(event) async for event in events]


async def _search(store: EventStore, info: StreamInfo, correlation_id: str) -> list[EventView]:
    """Events with this correlation id among the newest SEARCH_SCAN_LIMIT of each partition, newest first."""
    found: list[EventView] = []
    for partition in range(info.partitions):
        events = store.read_stream(
            info.name, partition=partition, direction=Direction.BACKWARDS, limit=SEARCH_SCAN_LIMIT
        )
        async for event in events:
            if event.correlation_id == correlation_id:
                found.append(event_view(event))
                if len(found) >= SEARCH_RESULTS:
                    break
    return sorted(found, key=lambda view: view.timestamp, reverse=True)[:SEARCH_RESULTS]


@router.get("/streams/{name}/tail")
async def stream_tail(name: StreamName, viewer: CurrentViewer) -> Response:
    """New events of every partition, from the heads at connection time, as ``text/event-stream``."""
    info = await viewer.store.get_stream(name)
    if info.type is StreamType.EPHEMERAL:
        raise InvalidArgumentError(f"{name!r} is a queue: only persistent streams have a tail")
    return StreamingResponse(
        _tail(viewer.store, info),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _tail(store: EventStore, info: StreamInfo) -> AsyncIterator[str]:
    arrivals: asyncio.Queue[RecordedEvent] = asyncio.Queue(maxsize=1000)

    async def follow(partition: int, from_offset: int) -> None:
        async for event in store.subscribe(info.name, partition=partition, from_offset=from_offset):
            await arrivals.put(event)

    followers = [
        asyncio.create_task(follow(head.partition, head.head), name=f"sluice-console-tail-{head.partition}")
        for head in info.partition_heads
    ]
    try:
        yield ": tailing\n\n"
        while True:
            try:
                event = await asyncio.wait_for(arrivals.get(), timeout=TAIL_HEARTBEAT_SECONDS)
            except TimeoutError:
                if any(follower.done() for follower in followers):
                    return  # a subscription ended (the store closed): the browser reconnects
                yield ": still here\n\n"
                continue
            view = event_view(event)
            yield f"id: {view.partition}:{view.offset}\ndata: {view.tail_message()}\n\n"
    finally:
        for follower in followers:
            follower.cancel()
        for follower in followers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
