"""The health page: readiness, the health checks of the streams the caller may read, and the key
figures at a glance (streams, events, groups, total lag, dead letters, queue depth)."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request
from starlette.responses import Response

from sluice.console.rendering import CurrentViewer, render
from sluice.core.streams import StreamType
from sluice.observability.health.checks import check_readiness, check_stream_health
from sluice.observability.health.model import StreamHealth

router = APIRouter()

STREAMS_CHECKED = 50
"""Health checks probe the database per stream: the page checks at most this many."""


@dataclasses.dataclass(frozen=True, slots=True)
class KeyFigures:
    streams: int
    queues: int
    retained_events: int
    groups: int
    lag_events: int
    queue_waiting: int
    queue_in_flight: int


@router.get("/health")
async def health_page(request: Request, viewer: CurrentViewer) -> Response:
    context = viewer.context
    readiness = await check_readiness(context.store, probe_timeout=context.health.probe_timeout)
    streams = await viewer.store.list_streams()
    checks: list[StreamHealth] = []
    for info in streams[:STREAMS_CHECKED]:
        checks.append(
            await check_stream_health(
                context.store,
                info.name,
                thresholds=context.health.thresholds_for(info.name),
                probe_timeout=context.health.probe_timeout,
            )
        )
    reader = viewer.store.consumer_groups()
    groups = await reader.list_groups()
    waiting = in_flight = 0
    for info in streams:
        if info.type is StreamType.EPHEMERAL:
            depth = await viewer.store.queue_depth(info.name)
            waiting += depth.waiting
            in_flight += depth.in_flight
    figures = KeyFigures(
        streams=sum(1 for info in streams if info.type is StreamType.PERSISTENT),
        queues=sum(1 for info in streams if info.type is StreamType.EPHEMERAL),
        retained_events=sum(
            head.head - head.first_offset
            for info in streams
            if info.type is StreamType.PERSISTENT
            for head in info.partition_heads
        ),
        groups=len(groups),
        lag_events=sum(summary.lag_events for summary in groups),
        queue_waiting=waiting,
        queue_in_flight=in_flight,
    )
    return render(
        request,
        "health.html",
        viewer=viewer,
        title="Health",
        readiness=readiness,
        checks=checks,
        checked_limit=STREAMS_CHECKED,
        stream_count=len(streams),
        figures=figures,
    )
