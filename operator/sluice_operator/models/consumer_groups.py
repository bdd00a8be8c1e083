"""ConsumerGroup: workers that read one EventStream together and hand its events to a handler.

The group runs pods (an HTTP sink forwarder or a Python entrypoint), so it has a ``/scale`` subresource:
``kubectl scale``, the HorizontalPodAutoscaler and KEDA set ``spec.replicas`` through it, and read the pods'
label selector from ``status.selector``, which the operator fills on its first reconcile.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import Field

from sluice_operator.models.common import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResource,
    Duration,
    EntrypointHandler,
    FreeFormObject,
    Lag,
    ObjectReference,
    PrinterColumn,
    Quantity,
    ResourceDefinition,
    ResourceStatus,
    ScaleSubresource,
    SluiceSchemaModel,
    ValidationRule,
    kubernetes_validations,
)

__all__ = [
    "CommitStrategy",
    "ConsumerGroup",
    "ConsumerGroupSpec",
    "ConsumerGroupStatus",
    "GroupMember",
    "Handler",
    "HttpSink",
    "PartitionPosition",
    "ResourceRequirements",
    "StartFrom",
    "StartPosition",
]

MAXIMUM_BATCH_SIZE = 10_000
"""The runtime's bound on a consumer's batch size (``sluice.store.values.consumer_group_options``)."""
MAXIMUM_PARTITIONS = 1024


class CommitStrategy(enum.StrEnum):
    """When a consumer's position is committed."""

    MANUAL = "manual"
    AFTER_EACH = "afterEach"
    AFTER_BATCH = "afterBatch"
    PERIODIC = "periodic"


class StartFrom(enum.StrEnum):
    """Where a group with no committed position starts reading."""

    EARLIEST = "earliest"
    LATEST = "latest"
    OFFSET = "offset"
    TIME = "time"


class StartPosition(SluiceSchemaModel):
    """Where a new group starts. Ignored once the group has committed positions (use a Replay to rewind)."""

    validation_rules = (
        ValidationRule(
            rule="self.from != 'offset' || has(self.offset)",
            message="startPosition.from 'offset' needs startPosition.offset",
            check=lambda position: position.from_ != StartFrom.OFFSET or position.offset is not None,
        ),
        ValidationRule(
            rule="self.from != 'time' || has(self.time)",
            message="startPosition.from 'time' needs startPosition.time",
            check=lambda position: position.from_ != StartFrom.TIME or position.time is not None,
        ),
    )

    from_: StartFrom = Field(default=StartFrom.EARLIEST, alias="from")
    """earliest (the runtime's default): the oldest retained event; latest: only events appended from now on;
    offset or time: as given."""
    offset: int | None = Field(default=None, ge=0)
    """With from: offset, the offset to start at, in every partition."""
    time: datetime | None = None
    """With from: time, start at the first event appended at or after this time."""


class HttpSink(SluiceSchemaModel):
    """Deliver events by HTTP POST (a JSON array per batch); a 2xx answer acknowledges the batch."""

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)
    """Where to POST, http:// or https://."""
    batch_size: int | None = Field(default=None, ge=1, le=MAXIMUM_BATCH_SIZE)
    """Events per request; the group's batchSize when omitted."""
    timeout: Duration = "10s"
    """How long to wait for an answer before the attempt counts as failed."""


class Handler(SluiceSchemaModel):
    """What handles the events: exactly one of sink or entrypoint."""

    validation_rules = (
        ValidationRule(
            rule="has(self.sink) != has(self.entrypoint)",
            message="handler needs exactly one of sink or entrypoint",
            check=lambda handler: (handler.sink is None) != (handler.entrypoint is None),
        ),
    )

    sink: HttpSink | None = None
    """Forward events to an HTTP endpoint."""
    entrypoint: EntrypointHandler | None = None
    """Call a Python function in a worker image."""


class ResourceRequirements(SluiceSchemaModel):
    """Compute resources of each worker container (as in a Pod's container resources)."""

    requests: dict[str, Quantity] | None = None
    """Minimum resources, such as ``cpu: 100m`` and ``memory: 128Mi``."""
    limits: dict[str, Quantity] | None = None
    """Maximum resources."""


class ConsumerGroupSpec(SluiceSchemaModel):
    """The desired consumer group."""

    validation_rules = (
        ValidationRule(
            rule="self.commitStrategy != 'periodic' || has(self.commitInterval)",
            message="commitStrategy periodic needs commitInterval",
            check=lambda spec: spec.commit_strategy != CommitStrategy.PERIODIC or spec.commit_interval is not None,
        ),
    )

    stream_ref: ObjectReference = Field(
        json_schema_extra=kubernetes_validations(
            ValidationRule(
                rule="self == oldSelf",
                message="streamRef is immutable: a group's positions belong to one stream",
                reason="FieldValueForbidden",
            )
        )
    )
    """The EventStream (in this namespace) to read. Immutable."""
    replicas: int = Field(default=1, ge=0)
    """Worker pods. Replicas beyond the partition count stand by idle. Set by the /scale subresource too."""
    handler: Handler
    """What handles the events."""
    commit_strategy: CommitStrategy = CommitStrategy.AFTER_BATCH
    """When positions are committed: manual (by the handler), afterEach event, afterBatch, or periodic."""
    commit_interval: Duration | None = None
    """With commitStrategy periodic: how often to commit."""
    batch_size: int = Field(default=100, ge=1, le=MAXIMUM_BATCH_SIZE)
    """Events fetched per read."""
    session_timeout: Duration = "30s"
    """A member that does not heartbeat within this time loses its partitions to the others."""
    start_position: StartPosition = StartPosition()
    """Where the group starts when it has no committed position yet."""
    resources: ResourceRequirements | None = None
    """Compute resources of each worker container."""
    pod_template: FreeFormObject | None = None
    """Overrides merged into the generated Pod template (labels, annotations, tolerations, env, ...)."""


class PartitionPosition(SluiceSchemaModel):
    """The group's committed position in one partition, and that partition's head."""

    partition: int = Field(ge=0)
    committed: int = Field(ge=0)
    """The next offset the group will process."""
    head: int = Field(ge=0)
    """The next offset to be appended."""


class GroupMember(SluiceSchemaModel):
    """One live member of the group and the partitions it owns."""

    consumer_id: str = Field(min_length=1, max_length=253)
    partitions: list[int] = Field(default_factory=list, max_length=MAXIMUM_PARTITIONS)


class ConsumerGroupStatus(ResourceStatus):
    """The group as last observed by the operator."""

    replicas: int | None = Field(default=None, ge=0)
    """Worker pods that exist (the /scale subresource's status.replicas)."""
    ready_replicas: int | None = Field(default=None, ge=0)
    """Worker pods that are ready."""
    selector: str | None = Field(default=None, max_length=4096)
    """Label selector of the worker pods, as a string (the /scale subresource's status.selector)."""
    lag: Lag | None = None
    """How far the group is behind the stream, over all partitions."""
    positions: list[PartitionPosition] = Field(
        default_factory=list,
        max_length=MAXIMUM_PARTITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["partition"]},
    )
    """Committed position and head of each partition."""
    members: list[GroupMember] = Field(
        default_factory=list,
        max_length=1024,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["consumerId"]},
    )
    """Live members and their partitions."""
    idle_replicas: int | None = Field(default=None, ge=0)
    """Replicas beyond the partition count, which own no partition."""


class ConsumerGroup(CustomResource):
    """A group of workers that share one EventStream's partitions and hand its events to a handler."""

    definition = ResourceDefinition(
        kind="ConsumerGroup",
        plural="consumergroups",
        short_names=("cg",),
        scale=ScaleSubresource(),
        printer_columns=(
            PrinterColumn(
                name="Stream", json_path=".spec.streamRef.name", type="string", description="The EventStream read"
            ),
            PrinterColumn(
                name="Desired", json_path=".spec.replicas", type="integer", description="Desired worker pods"
            ),
            PrinterColumn(
                name="Ready Replicas",
                json_path=".status.readyReplicas",
                type="integer",
                description="Worker pods that are ready",
            ),
            PrinterColumn(
                name="Lag", json_path=".status.lag.events", type="integer", description="Events not yet processed"
            ),
            PrinterColumn(
                name="Lag Seconds",
                json_path=".status.lag.seconds",
                type="number",
                description="Age of the oldest unprocessed event, in seconds",
            ),
            READY_COLUMN,
            PrinterColumn(
                name="Commit",
                json_path=".spec.commitStrategy",
                type="string",
                description="Commit strategy",
                priority=1,
            ),
            PrinterColumn(
                name="Idle",
                json_path=".status.idleReplicas",
                type="integer",
                description="Replicas beyond the partition count",
                priority=1,
            ),
            AGE_COLUMN,
        ),
    )

    kind: Literal["ConsumerGroup"] = "ConsumerGroup"
    spec: ConsumerGroupSpec
    status: ConsumerGroupStatus | None = None
