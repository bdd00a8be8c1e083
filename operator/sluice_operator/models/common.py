"""Types shared by every Sluice custom resource: conditions and status, references, retention limits, metadata
and the ``CustomResource`` base class.

What the models are made of (the base class, CEL rules, patterns, field types) is in ``schema.py``; the API
group, version and what a CRD says about each kind beyond its schema in ``resource_definitions.py``. Both are
re-exported here, where the kinds' modules and the operator import them from.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sluice_operator.models.resource_definitions import (
    AGE_COLUMN,
    API_VERSION,
    CATEGORY,
    GROUP,
    READY_COLUMN,
    VERSION,
    PrinterColumn,
    ResourceDefinition,
    ScaleSubresource,
    condition_column,
)
from sluice_operator.models.schema import (
    BYTE_QUANTITY_PATTERN,
    CONDITION_REASON_PATTERN,
    CONDITION_TYPE_PATTERN,
    DATABASE_SCHEMA_NAME_PATTERN,
    DURATION_PATTERN,
    ENTRYPOINT_FUNCTION_PATTERN,
    OBJECT_NAME_PATTERN,
    QUANTITY_PATTERN,
    STREAM_NAME_SCHEMA_PATTERN,
    TIME_OF_DAY_PATTERN,
    ByteQuantity,
    Duration,
    FreeFormObject,
    ObjectName,
    Quantity,
    SluiceSchemaModel,
    StreamName,
    ValidationRule,
    kubernetes_validations,
    parse_byte_quantity,
    parse_duration,
)

__all__ = [
    "AGE_COLUMN",
    "API_VERSION",
    "BYTE_QUANTITY_PATTERN",
    "CATEGORY",
    "CONDITION_REASON_PATTERN",
    "CONDITION_TYPE_PATTERN",
    "DATABASE_SCHEMA_NAME_PATTERN",
    "DURATION_PATTERN",
    "ENTRYPOINT_FUNCTION_PATTERN",
    "GROUP",
    "OBJECT_NAME_PATTERN",
    "QUANTITY_PATTERN",
    "READY_COLUMN",
    "STREAM_NAME_SCHEMA_PATTERN",
    "TIME_OF_DAY_PATTERN",
    "VERSION",
    "ByteQuantity",
    "CleanupWindow",
    "Condition",
    "ConditionStatus",
    "CustomResource",
    "DatabaseReference",
    "Duration",
    "EntrypointHandler",
    "FreeFormObject",
    "JobPhase",
    "Lag",
    "ObjectMeta",
    "ObjectName",
    "ObjectReference",
    "PrinterColumn",
    "Progress",
    "Quantity",
    "ResourceDefinition",
    "ResourceStatus",
    "RetentionLimits",
    "ScaleSubresource",
    "SecretReference",
    "SluiceSchemaModel",
    "StreamName",
    "ValidationRule",
    "condition_column",
    "kubernetes_validations",
    "parse_byte_quantity",
    "parse_duration",
]


# Conditions and status ----------------------------------------------------------------------------------


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(SluiceSchemaModel):
    """One aspect of the object's state, in the shape of Kubernetes' metav1.Condition."""

    type: str = Field(pattern=CONDITION_TYPE_PATTERN, max_length=316)
    """The aspect, in CamelCase: Ready, Reconciling, Stalled, or a kind-specific one."""
    status: ConditionStatus
    """True, False or Unknown."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition was computed from."""
    last_transition_time: datetime
    """When the status last changed."""
    reason: str = Field(pattern=CONDITION_REASON_PATTERN, min_length=1, max_length=1024)
    """Why, as a stable CamelCase word for programs."""
    message: str = Field(max_length=32768)
    """Why, for humans."""


class ResourceStatus(SluiceSchemaModel):
    """Status fields every Sluice kind has."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the operator last reconciled successfully."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready (always), Reconciling, Stalled and kind-specific conditions, one per type."""


class JobPhase(enum.StrEnum):
    """Where a finite piece of work (a replay, a projection rebuild) is."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Progress(SluiceSchemaModel):
    """How far a finite piece of work has come."""

    events_done: int = Field(ge=0)
    """Events processed so far."""
    events_total: int | None = Field(default=None, ge=0)
    """Events to process in all, when known."""
    percent: int | None = Field(default=None, ge=0, le=100)
    """eventsDone as a whole percentage of eventsTotal."""


class Lag(SluiceSchemaModel):
    """How far a reader is behind the head of what it reads."""

    events: int = Field(ge=0)
    """Events appended but not yet processed."""
    seconds: float = Field(ge=0)
    """Age of the oldest unprocessed event, in seconds (0 when caught up)."""
    observed_at: datetime | None = None
    """When the lag was measured."""


# References ---------------------------------------------------------------------------------------------


class ObjectReference(SluiceSchemaModel):
    """Another object in the same namespace, by name."""

    name: ObjectName
    """Its metadata.name."""


class SecretReference(SluiceSchemaModel):
    """A Secret in the same namespace."""

    name: ObjectName
    """The Secret's name."""


class DatabaseReference(SluiceSchemaModel):
    """The PostgreSQL database that holds the data, and the schema Sluice's tables live in.

    The Secret has either a ``uri`` key (``postgresql://user:password@host:port/dbname``) or ``host``,
    ``port``, ``dbname``, ``user`` and ``password`` keys, as CloudNativePG's application secrets do.
    """

    secret_ref: SecretReference
    """The Secret with the connection details."""
    schema_name: str = Field(default="sluice", alias="schema", pattern=DATABASE_SCHEMA_NAME_PATTERN, max_length=48)
    """PostgreSQL schema of Sluice's tables: a lower-case identifier of at most 48 characters."""


class EntrypointHandler(SluiceSchemaModel):
    """Python code run by Sluice's worker in the given image."""

    function: str = Field(pattern=ENTRYPOINT_FUNCTION_PATTERN, max_length=512)
    """The function to call, as ``package.module:function``."""
    image: str = Field(min_length=1, max_length=1024)
    """A container image with the Sluice runtime and the function's package installed."""


# Retention ----------------------------------------------------------------------------------------------


class CleanupWindow(SluiceSchemaModel):
    """When pruning may run, in UTC. A window whose end is before its start runs over midnight."""

    validation_rules = (
        ValidationRule(
            rule="self.start != self.end",
            message="cleanupWindow start and end must differ",
            check=lambda window: window.start != window.end,
        ),
    )

    start: str = Field(pattern=TIME_OF_DAY_PATTERN)
    """Start, ``HH:MM`` UTC."""
    end: str = Field(pattern=TIME_OF_DAY_PATTERN)
    """End, ``HH:MM`` UTC."""


def _has_a_limit(limits: RetentionLimits) -> bool:
    return any(limit is not None for limit in (limits.max_age, limits.max_event_count, limits.max_bytes))


class RetentionLimits(SluiceSchemaModel):
    """How much of a stream to keep. Events beyond any one limit are pruned, oldest first."""

    validation_rules = (
        ValidationRule(
            rule="has(self.maxAge) || has(self.maxEventCount) || has(self.maxBytes)",
            message="retention needs at least one of maxAge, maxEventCount or maxBytes",
            check=_has_a_limit,
        ),
    )

    max_age: Duration | None = None
    """Prune events older than this, such as ``7d`` or ``12h``."""
    max_event_count: int | None = Field(default=None, ge=1)
    """Keep at most this many events per partition."""
    max_bytes: ByteQuantity | None = None
    """Keep at most this many bytes of payload per stream, such as ``50Gi``."""
    cleanup_window: CleanupWindow | None = None
    """When pruning may run; any time when omitted."""
    respect_consumer_positions: bool = True
    """Never prune events a consumer group has not yet committed past, even beyond the limits."""


# Object metadata and the custom resource base -----------------------------------------------------------


class ObjectMeta(BaseModel):
    """The subset of Kubernetes object metadata the operator reads. Other metadata is ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None


class CustomResource(SluiceSchemaModel):
    """Base of the five kinds: apiVersion, kind and metadata. Subclasses add spec, status and definition.

    In the generated schema apiVersion and kind are plain strings and metadata an object: the API server
    validates those itself.
    """

    definition: ClassVar[ResourceDefinition]
    """Names, short names, printer columns and subresources of the kind."""

    api_version: str = API_VERSION
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: SluiceSchemaModel
    """Narrowed by each kind to its own spec model."""
    status: ResourceStatus | None = None
    """Narrowed by each kind to its own status model; None until the operator first writes it."""
