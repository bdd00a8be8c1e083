"""Replay: re-deliver a stream's events, from an offset or a time, to a consumer group, projection or stream.

A Replay is a one-off job, like a Kubernetes Job: its spec is immutable, and its status reports a phase
(Pending, Running, Succeeded, Failed) and progress. Create a new Replay to replay again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from sluice_operator.models.common import (
    AGE_COLUMN,
    CustomResource,
    JobPhase,
    ObjectName,
    PrinterColumn,
    Progress,
    ResourceDefinition,
    ResourceStatus,
    SluiceSchemaModel,
    ValidationRule,
    condition_column,
)

__all__ = [
    "Replay",
    "ReplaySource",
    "ReplaySpec",
    "ReplayStatus",
    "ReplayTarget",
]

MAXIMUM_PARTITIONS = 1024


class ReplaySource(SluiceSchemaModel):
    """The events to replay."""

    stream: ObjectName
    """The EventStream (in this namespace) to read."""
    partitions: list[int] | None = Field(
        default=None, min_length=1, max_length=MAXIMUM_PARTITIONS, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Only these partitions; all when omitted."""


def _exactly_one_target(target: ReplayTarget) -> bool:
    return sum(name is not None for name in (target.consumer_group, target.projection, target.stream)) == 1


class ReplayTarget(SluiceSchemaModel):
    """Where the events go: exactly one of consumerGroup, projection or stream."""

    validation_rules = (
        ValidationRule(
            rule=(
                "(has(self.consumerGroup) ? 1 : 0) + (has(self.projection) ? 1 : 0) + (has(self.stream) ? 1 : 0) == 1"
            ),
            message="target needs exactly one of consumerGroup, projection or stream",
            check=_exactly_one_target,
        ),
    )

    consumer_group: ObjectName | None = None
    """A ConsumerGroup (in this namespace): its committed offsets are reset to the replay's start (its members are
    fenced and resume from there), so its handler gets the events again."""
    projection: ObjectName | None = None
    """A Projection (in this namespace): the events are applied to it again."""
    stream: ObjectName | None = None
    """An EventStream (in this namespace): the events are appended to it."""


class ReplaySpec(SluiceSchemaModel):
    """What to replay, from where, to where. Immutable."""

    validation_rules = (
        ValidationRule(
            rule="has(self.fromOffset) != has(self.fromTime)",
            message="a replay needs exactly one of fromOffset or fromTime",
            check=lambda spec: (spec.from_offset is None) != (spec.from_time is None),
        ),
        ValidationRule(
            rule="self == oldSelf",
            message="a Replay's spec is immutable: create a new Replay instead",
            reason="FieldValueForbidden",
        ),
    )

    source: ReplaySource
    """The events to replay."""
    from_offset: int | None = Field(default=None, ge=0)
    """Replay from this offset, in every partition replayed."""
    from_time: datetime | None = None
    """Replay from the first event appended at or after this time."""
    target: ReplayTarget
    """Where the events go."""
    rate_limit: int | None = Field(default=None, ge=1)
    """At most this many events per second; unlimited when omitted."""
    batch_size: int = Field(default=500, ge=1, le=100_000)
    """Events read and delivered per batch."""


class ReplayStatus(ResourceStatus):
    """How the replay is going."""

    phase: JobPhase | None = None
    """Pending, Running, Succeeded or Failed."""
    progress: Progress | None = None
    """Events replayed so far, of how many."""
    start_time: datetime | None = None
    """When the replay started running."""
    completion_time: datetime | None = None
    """When the replay succeeded or failed."""


class Replay(CustomResource):
    """A one-off re-delivery of a stream's events to a consumer group, a projection or another stream."""

    definition = ResourceDefinition(
        kind="Replay",
        plural="replays",
        short_names=("rpl",),
        printer_columns=(
            PrinterColumn(
                name="Source", json_path=".spec.source.stream", type="string", description="The EventStream replayed"
            ),
            PrinterColumn(
                name="Target",
                json_path=".spec.target.*",
                type="string",
                description="The consumer group, projection or stream the events go to",
            ),
            PrinterColumn(name="Phase", json_path=".status.phase", type="string", description="Where the replay is"),
            PrinterColumn(
                name="Progress",
                json_path=".status.progress.percent",
                type="integer",
                description="Events replayed, in percent",
            ),
            condition_column("Succeeded", "Succeeded"),
            PrinterColumn(
                name="Events",
                json_path=".status.progress.eventsDone",
                type="integer",
                description="Events replayed",
                priority=1,
            ),
            AGE_COLUMN,
        ),
    )

    kind: Literal["Replay"] = "Replay"
    spec: ReplaySpec
    status: ReplayStatus | None = None
