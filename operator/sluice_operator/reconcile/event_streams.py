"""What an EventStream means: the stream configuration to create, the change to make to an existing stream,
and the status to report (head offsets, event counts, conditions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.core.streams import DeliverySemantics, StreamConfig, StreamInfo
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.event_streams import DeletionPolicy, EventStream
from sluice_operator.reconcile.conditions import DesiredCondition, format_time

__all__ = [
    "SCHEMA_READY",
    "STREAM_READY",
    "StreamChange",
    "deletes_data",
    "desired_stream_config",
    "plan_stream_change",
    "stream_status_fields",
]

SCHEMA_READY = "SchemaReady"
STREAM_READY = "StreamReady"


def desired_stream_config(stream: EventStream) -> StreamConfig:
    """The runtime configuration the spec asks for."""
    spec = stream.spec
    return StreamConfig(
        name=stream.stream_name,
        type=spec.type,
        partitions=spec.partitions,
        max_attempts=spec.dead_letter.max_attempts,
        delivery=DeliverySemantics(spec.delivery_semantics.value),
    )


def deletes_data(stream: EventStream) -> bool:
    """Whether deleting the object drops the stream's data (and so whether it needs a finalizer)."""
    return stream.spec.deletion_policy is DeletionPolicy.DELETE


@dataclass(frozen=True)
class StreamChange:
    """What to do to the database: create the stream, raise its partition count, nothing, or refuse."""

    create: bool = False
    increase_partitions_to: int | None = None
    conflict: str | None = None
    """Why the stream in the database cannot be made to match the spec (a Stalled reason's message)."""


def plan_stream_change(desired: StreamConfig, existing: StreamInfo | None) -> StreamChange:
    """Compare the spec's configuration with the stream as stored."""
    if existing is None:
        return StreamChange(create=True)
    if existing.type is not desired.type:
        return StreamChange(
            conflict=f"stream {desired.name!r} exists in the database as {existing.type.value}, "
            f"the spec says {desired.type.value}: the type of a stream cannot change"
        )
    if existing.delivery is not desired.delivery:
        return StreamChange(
            conflict=f"stream {desired.name!r} exists in the database with {existing.delivery.value} delivery, "
            f"the spec says {desired.delivery.value}: delivery semantics cannot change"
        )
    if existing.partitions > desired.partitions:
        return StreamChange(
            conflict=f"stream {desired.name!r} has {existing.partitions} partitions in the database, "
            f"the spec says {desired.partitions}: partitions can only grow"
        )
    if existing.partitions < desired.partitions:
        return StreamChange(increase_partitions_to=desired.partitions)
    return StreamChange()


def stream_status_fields(info: StreamInfo) -> dict[str, Any]:
    """Status fields observed from the stored stream: head and first (oldest retained) offsets, event counts
    and the last event time."""
    heads = sorted(info.partition_heads, key=lambda partition: partition.partition)
    appended = sum(partition.head for partition in heads)
    last_times = [partition.last_appended_at for partition in heads if partition.last_appended_at is not None]
    return {
        "headOffsets": [
            {"partition": partition.partition, "head": partition.head, "first": partition.first_offset}
            for partition in heads
        ],
        "appendedEventCount": appended,
        "approximateEventCount": sum(partition.head - partition.first_offset for partition in heads),
        "lastEventTime": format_time(max(last_times)) if last_times else None,
    }


def schema_ready(ok: bool, message: str) -> DesiredCondition:
    """SchemaReady: the database is reachable and Sluice's schema is migrated."""
    if ok:
        return DesiredCondition(SCHEMA_READY, ConditionStatus.TRUE, "SchemaMigrated", message)
    return DesiredCondition(SCHEMA_READY, ConditionStatus.FALSE, "DatabaseUnreachable", message)


def stream_ready(ok: bool, reason: str, message: str) -> DesiredCondition:
    """StreamReady: the stream exists in the database as the spec describes it."""
    return DesiredCondition(STREAM_READY, ConditionStatus.TRUE if ok else ConditionStatus.FALSE, reason, message)
