"""Fixing what a replay covers when it first starts: per partition, the start offset (from the
requested offset or time) and the end (the head at that moment, so ``total`` never grows)."""

from __future__ import annotations

from sluice.core.errors import InvalidArgumentError, ReplayTargetUnavailableError, StreamTypeError
from sluice.core.streams import StreamType
from sluice.services.projections.status import projection_status
from sluice.store import EventStore
from sluice.store.values.replays import PartitionProgress, ReplayRequest, ReplayTargetKind


async def plan_partitions(store: EventStore, request: ReplayRequest) -> list[PartitionProgress]:
    """The partitions a new replay covers, each from its start offset up to its current head."""
    info = await store.get_stream(request.stream)
    if info.type is not StreamType.PERSISTENT:
        raise StreamTypeError(f"{request.stream!r} is a queue: only persistent streams can be replayed")
    partitions = request.partitions if request.partitions is not None else tuple(range(info.partitions))
    missing = [partition for partition in partitions if partition >= info.partitions]
    if missing:
        raise InvalidArgumentError(
            f"stream {request.stream!r} has {info.partitions} partition(s); partition(s) {missing} do not exist"
        )
    planned = []
    for partition in partitions:
        bounds = info.partition_heads[partition]
        if request.from_offset is not None:
            start = min(max(request.from_offset, bounds.first_offset), bounds.head)
        else:
            first = [
                event
                async for event in store.read_stream(
                    request.stream, from_time=request.from_time, partition=partition, limit=1
                )
            ]
            start = min(first[0].offset, bounds.head) if first else bounds.head
        planned.append(
            PartitionProgress(partition=partition, start_offset=start, next_offset=start, end_offset=bounds.head)
        )
    return planned


async def check_target(store: EventStore, request: ReplayRequest) -> None:
    """Refuse, before anything is recorded, a target this replay cannot use."""
    if request.target is ReplayTargetKind.PROJECTION:
        if request.partitions is not None or request.from_time is not None or request.from_offset not in {None, 0}:
            raise InvalidArgumentError(
                f"replay {request.name!r}: a projection is rebuilt from the start of all its sources; "
                "replay it from offset 0, without partitions"
            )
        assert request.target_name is not None
        await projection_status(store, request.target_name)  # ProjectionNotFoundError when it never ran
    if request.target is ReplayTargetKind.STREAM and request.target_name == request.stream:
        raise ReplayTargetUnavailableError(
            f"replay {request.name!r}: the target stream is the source stream {request.stream!r}"
        )
    if request.target is ReplayTargetKind.CONSUMER_GROUP:
        if request.partitions is not None:
            raise InvalidArgumentError(
                f"replay {request.name!r}: a consumer-group replay resets the group's offsets in every "
                "partition; leave out the partitions"
            )
        assert request.target_name is not None
        await store.consumer_groups().describe(request.stream, request.target_name)  # GroupNotFoundError
