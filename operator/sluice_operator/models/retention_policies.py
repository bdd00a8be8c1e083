"""RetentionPolicy: retention limits applied on a schedule to every EventStream a selector matches.

An EventStream's own ``spec.retention`` covers one stream; a RetentionPolicy covers many (``orders*``, or
every stream labelled ``tier: bulk``) in its namespace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from croniter import croniter
from pydantic import Field, field_validator

from sluice_operator.models.common import (
    AGE_COLUMN,
    READY_COLUMN,
    CustomResource,
    PrinterColumn,
    ResourceDefinition,
    ResourceStatus,
    RetentionLimits,
    SluiceSchemaModel,
    ValidationRule,
)

__all__ = [
    "CRON_SCHEDULE_PATTERN",
    "STREAM_NAME_WILDCARD_PATTERN",
    "RetentionPolicy",
    "RetentionPolicySpec",
    "RetentionPolicyStatus",
    "StreamSelector",
]

STREAM_NAME_WILDCARD_PATTERN = r"^[A-Za-z0-9*][A-Za-z0-9._:*-]{0,199}$"
"""An EventStream name in which ``*`` matches any run of characters, such as ``orders*``."""
CRON_SCHEDULE_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"
"""A five-field cron expression (UTC), or one of the ``@daily``-style shorthands."""

StreamNameWildcard = Annotated[str, Field(pattern=STREAM_NAME_WILDCARD_PATTERN, max_length=200)]


class StreamSelector(SluiceSchemaModel):
    """Which EventStreams (in this namespace) the policy covers: those matching any name pattern, and those
    with all the labels. At least one of the two is required, so an empty selector cannot prune everything."""

    validation_rules = (
        ValidationRule(
            rule="has(self.names) || has(self.matchLabels)",
            message="streamSelector needs names or matchLabels",
            check=lambda selector: selector.names is not None or selector.match_labels is not None,
        ),
    )

    names: list[StreamNameWildcard] | None = Field(
        default=None, min_length=1, max_length=256, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """EventStream names; ``*`` matches any run of characters (``orders*``)."""
    match_labels: dict[str, str] | None = Field(default=None, min_length=1)
    """Labels an EventStream must all have."""


class RetentionPolicySpec(RetentionLimits):
    """The limits, which streams they apply to, and when pruning runs."""

    stream_selector: StreamSelector
    """The EventStreams this policy covers."""
    schedule: str = Field(default="0 3 * * *", pattern=CRON_SCHEDULE_PATTERN, max_length=128)
    """When pruning runs, as a cron expression in UTC; every night at 03:00 by default."""

    @field_validator("schedule")
    @classmethod
    def _schedule_is_a_cron_expression(cls, schedule: str) -> str:
        # The CRD's pattern checks the shape; only a cron parser knows that "61 * * * *" is wrong.
        if not croniter.is_valid(schedule):
            raise ValueError(f"schedule {schedule!r} is not a valid cron expression")
        return schedule


class RetentionPolicyStatus(ResourceStatus):
    """The policy's last run."""

    matched_streams: list[str] = Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "set"})
    """EventStreams the selector matched at the last reconcile."""
    last_run_time: datetime | None = None
    """When pruning last ran."""
    pruned_events: int | None = Field(default=None, ge=0)
    """Events deleted by the last run."""
    pruned_bytes: int | None = Field(default=None, ge=0)
    """Payload bytes deleted by the last run."""
    next_run_time: datetime | None = None
    """When the schedule next runs pruning."""
    last_run_request: str | None = None
    """The ``sluice.dev/run-requested`` annotation value the last requested run served."""
    held_back_by: list[str] = Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "set"})
    """Consumer groups (``stream/group``) whose positions kept the last run from pruning all it could."""


class RetentionPolicy(CustomResource):
    """Retention limits applied on a schedule to every EventStream a selector matches."""

    definition = ResourceDefinition(
        kind="RetentionPolicy",
        plural="retentionpolicies",
        short_names=("retpol",),
        printer_columns=(
            PrinterColumn(
                name="Matched",
                json_path=".status.matchedStreams",
                type="string",
                description="EventStreams the selector matched",
            ),
            PrinterColumn(
                name="Max Age", json_path=".spec.maxAge", type="string", description="Maximum event age", priority=1
            ),
            PrinterColumn(
                name="Schedule",
                json_path=".spec.schedule",
                type="string",
                description="Cron schedule (UTC)",
                priority=1,
            ),
            PrinterColumn(
                name="Last Run", json_path=".status.lastRunTime", type="date", description="When pruning last ran"
            ),
            PrinterColumn(
                name="Pruned",
                json_path=".status.prunedEvents",
                type="integer",
                description="Events deleted by the last run",
            ),
            READY_COLUMN,
            AGE_COLUMN,
        ),
    )

    kind: Literal["RetentionPolicy"] = "RetentionPolicy"
    spec: RetentionPolicySpec
    status: RetentionPolicyStatus | None = None
