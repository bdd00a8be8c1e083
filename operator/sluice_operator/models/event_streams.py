"""EventStream: one Sluice stream (a partitioned append-only log, or a queue) and how it is kept.

The stream's type, partition count and dead-letter limit use the runtime's own types and bounds
(``sluice.core.streams``), so a stream the API server accepts is one the runtime can create.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from sluice.core.streams import DEFAULT_MAX_ATTEMPTS, StreamType
from sluice_operator.models.common import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResource,
    DatabaseReference,
    Duration,
    PrinterColumn,
    ResourceDefinition,
    ResourceStatus,
    RetentionLimits,
    SluiceSchemaModel,
    StreamName,
    ValidationRule,
    kubernetes_validations,
)

__all__ = [
    "AccessControl",
    "Backoff",
    "BackoffType",
    "DeadLetterPolicy",
    "DeletionPolicy",
    "DeliverySemantics",
    "EventStream",
    "EventStreamSpec",
    "EventStreamStatus",
    "PartitionHead",
    "StreamType",
]

MAXIMUM_PARTITIONS = 1024
MAXIMUM_ATTEMPTS = 1000
MAXIMUM_PRINCIPALS = 256


class DeliverySemantics(enum.StrEnum):
    """BROADCAST: every consumer group sees every event. QUEUE: each event goes to one consumer."""

    BROADCAST = "broadcast"
    QUEUE = "queue"


class DeletionPolicy(enum.StrEnum):
    """What deleting the EventStream object does to the stream's data."""

    RETAIN = "retain"
    DELETE = "delete"


class BackoffType(enum.StrEnum):
    """How the wait between delivery attempts grows."""

    FIXED = "fixed"
    EXPONENTIAL = "exponential"


class Backoff(SluiceSchemaModel):
    """The wait before a failed delivery is attempted again."""

    type: BackoffType = BackoffType.EXPONENTIAL
    """fixed: always ``initial``; exponential: doubling from ``initial`` up to ``maximum``."""
    initial: Duration = "1s"
    """Wait before the second attempt."""
    maximum: Duration = "5m"
    """Longest wait between attempts."""


class DeadLetterPolicy(SluiceSchemaModel):
    """When an event that keeps failing is set aside in the dead-letter queue."""

    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=MAXIMUM_ATTEMPTS)
    """Deliveries before the event moves to the dead-letter queue."""
    backoff: Backoff = Backoff()
    """Wait between attempts."""


Principal = Annotated[str, Field(min_length=1, max_length=253)]
"""A ServiceAccount (``system:serviceaccount:<namespace>:<name>``) or a PostgreSQL role name."""


def _principal_list() -> Any:
    """A fresh field (pydantic fills in each FieldInfo, so fields must not share one). The default is in the
    schema, so the API server stores ``[]`` too and the model and the stored object agree."""
    return Field(
        default=[],
        max_length=MAXIMUM_PRINCIPALS,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class AccessControl(SluiceSchemaModel):
    """Who may do what with the stream. Principals are ServiceAccounts
    (``system:serviceaccount:<namespace>:<name>``) or PostgreSQL role names."""

    readers: list[Principal] = _principal_list()
    """May read events."""
    writers: list[Principal] = _principal_list()
    """May append events."""
    consumers: list[Principal] = _principal_list()
    """May join consumer groups and commit positions."""
    admins: list[Principal] = _principal_list()
    """May change the stream's configuration and prune or delete it."""


class EventStreamSpec(SluiceSchemaModel):
    """The desired stream."""

    validation_rules = (
        ValidationRule(
            rule=(
                "has(self.streamName) == has(oldSelf.streamName)"
                " && (!has(self.streamName) || self.streamName == oldSelf.streamName)"
            ),
            message="streamName is immutable: create a new EventStream to use another name",
            reason="FieldValueForbidden",
        ),
        ValidationRule(
            rule=(
                "has(self.database) == has(oldSelf.database)"
                " && (!has(self.database) || self.database == oldSelf.database)"
            ),
            message=(
                "database is immutable: the stream's events stay in the database they were written to; "
                "create a new EventStream on the other database"
            ),
            reason="FieldValueForbidden",
        ),
    )

    stream_name: StreamName | None = None
    """The stream's name in Sluice; metadata.name when omitted. Immutable."""
    type: StreamType = Field(
        default=StreamType.PERSISTENT,
        json_schema_extra=kubernetes_validations(
            ValidationRule(
                rule="self == oldSelf",
                message="type is immutable: a persistent stream cannot become ephemeral or the reverse",
                reason="FieldValueForbidden",
            )
        ),
    )
    """persistent: an append-only log read by offset. ephemeral: a queue whose events are deleted once handled.
    Immutable."""
    partitions: int = Field(
        default=1,
        ge=1,
        le=MAXIMUM_PARTITIONS,
        json_schema_extra=kubernetes_validations(
            ValidationRule(
                rule="self >= oldSelf",
                message="partitions may be increased but never decreased",
                reason="FieldValueForbidden",
            )
        ),
    )
    """Number of partitions, 1 to 1024. May grow, never shrink."""
    delivery_semantics: DeliverySemantics = DeliverySemantics.BROADCAST
    """broadcast: every consumer group sees every event; queue: each event goes to one consumer."""
    retention: RetentionLimits | None = None
    """How much to keep; everything is kept when omitted."""
    dead_letter: DeadLetterPolicy = DeadLetterPolicy()
    """When events that keep failing are set aside."""
    access: AccessControl | None = None
    """Who may read, write, consume and administer the stream."""
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """retain: deleting this object leaves the stream's data in PostgreSQL; delete: drops it too."""
    database: DatabaseReference | None = None
    """Where the stream lives; the operator's default database when omitted. Immutable: changing it would create
    an empty stream in the other database and leave the events behind."""


class PartitionHead(SluiceSchemaModel):
    """One partition's head (the next offset to be assigned) and first offset (the oldest one retained)."""

    partition: int = Field(ge=0)
    head: int = Field(ge=0)
    first: int | None = Field(default=None, ge=0)
    """The oldest offset still stored: retention prunes below it."""


class EventStreamStatus(ResourceStatus):
    """The stream as last observed by the operator."""

    head_offsets: list[PartitionHead] = Field(
        default_factory=list,
        max_length=MAXIMUM_PARTITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["partition"]},
    )
    """Each partition's head offset."""
    appended_event_count: int | None = Field(default=None, ge=0)
    """Events ever appended: the sum of the partitions' head offsets (the Head column)."""
    approximate_event_count: int | None = Field(default=None, ge=0)
    """Events currently stored, estimated (fewer than appended once retention prunes)."""
    last_event_time: datetime | None = None
    """When the newest event was appended."""
    last_prune_time: datetime | None = None
    """When ``spec.retention`` was last applied."""
    pruned_events: int | None = Field(default=None, ge=0)
    """Events the last application of ``spec.retention`` deleted."""
    held_back_by: list[str] = Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "set"})
    """Consumer groups whose positions kept the last prune from reaching the limits."""


class EventStream(CustomResource):
    """A Sluice event stream: a partitioned append-only log (persistent) or a queue (ephemeral)."""

    definition = ResourceDefinition(
        kind="EventStream",
        plural="eventstreams",
        short_names=("evs",),
        printer_columns=(
            READY_COLUMN,
            PrinterColumn(
                name="Stream",
                json_path=".spec.streamName",
                type="string",
                description="The stream's name in Sluice, when it differs from metadata.name",
                priority=1,
            ),
            PrinterColumn(name="Type", json_path=".spec.type", type="string", description="persistent or ephemeral"),
            PrinterColumn(
                name="Partitions", json_path=".spec.partitions", type="integer", description="Number of partitions"
            ),
            PrinterColumn(
                name="Head",
                json_path=".status.appendedEventCount",
                type="integer",
                description="Sum of the partitions' head offsets: events ever appended",
            ),
            PrinterColumn(
                name="Retention", json_path=".spec.retention.maxAge", type="string", description="Maximum event age"
            ),
            PrinterColumn(
                name="Events",
                json_path=".status.approximateEventCount",
                type="integer",
                description="Events stored (approximate)",
                priority=1,
            ),
            PrinterColumn(
                name="Delivery",
                json_path=".spec.deliverySemantics",
                type="string",
                description="broadcast or queue",
                priority=1,
            ),
            AGE_COLUMN,
        ),
    )
    validation_rules = (
        ValidationRule(
            rule="has(self.spec.streamName) || self.metadata.name.size() <= 200",
            message="metadata.name is longer than a stream name may be (200 characters): set spec.streamName",
            check=lambda stream: stream.spec.stream_name is not None or len(stream.metadata.name or "") <= 200,
        ),
    )

    kind: Literal["EventStream"] = "EventStream"
    spec: EventStreamSpec
    status: EventStreamStatus | None = None

    @property
    def stream_name(self) -> str:
        """The stream's name in Sluice: spec.streamName, or metadata.name."""
        name = self.spec.stream_name or self.metadata.name
        if name is None:
            raise ValueError("an EventStream without spec.streamName needs metadata.name")
        return name
