"""The JSON shapes of the REST API (requests and answers), and their conversion from runtime objects.

They are separate from the runtime's models on purpose: the API is a contract with clients in any
language, so it changes only deliberately (``docs/openapi.json`` is checked in and drift-tested).
"""

from __future__ import annotations

import base64
import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sluice.core.messages import DeadLetter
from sluice.core.streams import DeliverySemantics, StreamInfo, StreamType
from sluice.store.values.consumer_groups import GroupDescription, GroupSummary

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
"""Stream, queue, group and consumer ids (see ``sluice.core.names``)."""
MAX_OFFSET = 2**63 - 1

StreamName = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=200)]


class StrictModel(BaseModel):
    """Requests reject unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class PartitionHead(BaseModel):
    partition: int
    head: int = Field(description="The next offset to be assigned (the number of events ever appended).")
    last_appended_at: datetime | None


class StreamSummary(BaseModel):
    name: str
    type: StreamType
    partitions: int
    max_attempts: int = Field(description="Queues: deliveries before a message is dead-lettered.")
    delivery: DeliverySemantics = Field(
        description="Persistent streams: broadcast (one owner per partition) or queue (members share partitions)."
    )
    created_at: datetime
    head_offsets: list[PartitionHead]
    approximate_event_count: int = Field(
        description="Events appended over all partitions (the sum of the heads); queues report 0."
    )


class ConsumerGroupLag(BaseModel):
    group_id: str
    members: int
    active_members: int
    lag_events: int
    lag_seconds: float


class StreamDetail(StreamSummary):
    consumer_groups: list[ConsumerGroupLag]


class StreamList(BaseModel):
    streams: list[StreamSummary]


class CreateStreamRequest(StrictModel):
    name: StreamName
    type: StreamType = StreamType.PERSISTENT
    partitions: Annotated[int, Field(ge=1, le=1024)] = 1
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 5
    delivery: DeliverySemantics = DeliverySemantics.BROADCAST


class UpdateStreamRequest(StrictModel):
    """The configuration changes the runtime supports today: more partitions (never fewer)."""

    partitions: Annotated[int, Field(ge=1, le=1024)]


class GroupMember(BaseModel):
    consumer_id: str
    joined_at: datetime
    last_heartbeat_at: datetime
    partitions: list[int]
    active: bool


class GroupPartition(BaseModel):
    partition: int
    committed_offset: int
    head: int
    lag_events: int
    lag_seconds: float
    owner: str | None
    epoch: int


class GroupDetail(BaseModel):
    stream_name: str
    group_id: str
    generation: int
    created_at: datetime
    lag_events: int
    lag_seconds: float
    members: list[GroupMember]
    partitions: list[GroupPartition]


class GroupList(BaseModel):
    groups: list[ConsumerGroupLag]


class ResetTarget(enum.StrEnum):
    EARLIEST = "earliest"
    LATEST = "latest"
    OFFSET = "offset"
    TIME = "time"


class ResetOffsetRequest(StrictModel):
    """Where to move a group's committed offsets. ``offset`` applies to every partition (capped at
    each head); ``time`` moves to the first event at or after it. ``force`` resets a group whose
    members are active (they are fenced and resume from the new offsets)."""

    to: ResetTarget
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] | None = None
    time: AwareDatetime | None = None
    force: bool = False


class SubscriptionResetOffsetRequest(ResetOffsetRequest):
    """As ResetOffsetRequest; ``stream`` is needed only when several streams have a group of that id."""

    stream: StreamName | None = None


class DeliveryFailureModel(BaseModel):
    attempt: int
    at: datetime
    reason: str


class DeadLetterModel(BaseModel):
    dead_letter_id: int
    message_id: int
    event_type: str
    data: Any = Field(default=None, description="The payload as JSON; null for binary payloads (see data_base64).")
    data_base64: str | None = Field(default=None, description="Binary payloads, base64-encoded.")
    metadata: dict[str, Any]
    correlation_id: str | None
    enqueued_at: datetime
    attempts: int
    first_delivered_at: datetime | None
    last_delivered_at: datetime | None
    failures: list[DeliveryFailureModel]
    dead_lettered_at: datetime


class DeadLetterList(BaseModel):
    queue_name: str
    dead_letters: list[DeadLetterModel]


class DeadLetterSelection(StrictModel):
    dead_letter_ids: list[Annotated[int, Field(ge=1, le=MAX_OFFSET)]] | None = Field(
        default=None, min_length=1, max_length=10_000, description="The dead letters to act on; omit for all."
    )


class RedriveResult(BaseModel):
    queue_name: str
    message_ids: list[int] = Field(description="The new messages, one per redriven dead letter.")


class PurgeResult(BaseModel):
    queue_name: str
    purged: int


class Liveness(BaseModel):
    status: Literal["alive"] = "alive"


def stream_summary(info: StreamInfo) -> StreamSummary:
    heads = [
        PartitionHead(partition=head.partition, head=head.head, last_appended_at=head.last_appended_at)
        for head in info.partition_heads
    ]
    return StreamSummary(
        name=info.name,
        type=info.type,
        partitions=info.partitions,
        max_attempts=info.max_attempts,
        delivery=info.delivery,
        created_at=info.created_at,
        head_offsets=heads,
        approximate_event_count=sum(head.head for head in heads) if info.type is StreamType.PERSISTENT else 0,
    )


def group_lag(description: GroupDescription) -> ConsumerGroupLag:
    return ConsumerGroupLag(
        group_id=description.group_id,
        members=len(description.members),
        active_members=len(description.active_members),
        lag_events=description.lag_events,
        lag_seconds=description.lag_seconds,
    )


def group_lag_from_summary(summary: GroupSummary) -> ConsumerGroupLag:
    return ConsumerGroupLag(
        group_id=summary.group_id,
        members=summary.members,
        active_members=summary.members,
        lag_events=summary.lag_events,
        lag_seconds=0.0,
    )


def group_detail(description: GroupDescription) -> GroupDetail:
    return GroupDetail(
        stream_name=description.stream_name,
        group_id=description.group_id,
        generation=description.generation,
        created_at=description.created_at,
        lag_events=description.lag_events,
        lag_seconds=description.lag_seconds,
        members=[
            GroupMember(
                consumer_id=member.consumer_id,
                joined_at=member.joined_at,
                last_heartbeat_at=member.last_heartbeat_at,
                partitions=list(member.partitions),
                active=member.active,
            )
            for member in description.members
        ],
        partitions=[
            GroupPartition(
                partition=partition.partition,
                committed_offset=partition.committed_offset,
                head=partition.head,
                lag_events=partition.lag_events,
                lag_seconds=partition.lag_seconds,
                owner=partition.owner,
                epoch=partition.epoch,
            )
            for partition in description.partitions
        ],
    )


def dead_letter_model(letter: DeadLetter) -> DeadLetterModel:
    binary = isinstance(letter.data, bytes | bytearray)
    return DeadLetterModel(
        dead_letter_id=letter.dead_letter_id,
        message_id=letter.message_id,
        event_type=letter.event_type,
        data=None if binary else letter.data,
        data_base64=base64.b64encode(letter.data).decode() if binary else None,
        metadata=dict(letter.metadata),
        correlation_id=letter.correlation_id,
        enqueued_at=letter.enqueued_at,
        attempts=letter.attempts,
        first_delivered_at=letter.first_delivered_at,
        last_delivered_at=letter.last_delivered_at,
        failures=[
            DeliveryFailureModel(attempt=failure.attempt, at=failure.at, reason=failure.reason)
            for failure in letter.failures
        ],
        dead_lettered_at=letter.dead_lettered_at,
    )
