"""Reconciling a ConsumerGroup: its Deployment of ``sluice consume`` pods, /scale status, and lag.

Lag is not read here on every change: ``poll_stream_lag`` reads it for every group of one stream in one go
(the periodic resync calls it once per stream), and hands each group's observation to the reconcile. The
same poll says whether the database answers: ``DatabaseReachable`` (kept as it was between polls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from sluice.core.errors import GroupNotFoundError, StreamNotFoundError
from sluice.core.streams import DeliverySemantics
from sluice.store import EventStore
from sluice.store.values.consumer_groups import GroupDescription
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.database_targets import resolve_database
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError, UnsupportedSpecError
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.consumer_groups import ConsumerGroup
from sluice_operator.models.event_streams import EventStream
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.consumer_groups import (
    consumer_deployment,
    idle_replicas,
    idle_replicas_condition,
    lag_changed,
    lag_status_fields,
)
from sluice_operator.reconcile.ownership import Owner, selector_string
from sluice_operator.reconcile.workloads import WORKLOAD_AVAILABLE, deployment_state, workload_available

__all__ = [
    "DATABASE_REACHABLE",
    "KIND",
    "STREAM_FOUND",
    "LagObservation",
    "poll_stream_lag",
    "reconcile_consumer_group",
]

KIND = "ConsumerGroup"
STREAM_FOUND = "StreamFound"
DATABASE_REACHABLE = "DatabaseReachable"


@dataclass(frozen=True)
class LagObservation:
    """One poll of a group: its description (None before its first member joined), or why the database
    could not be asked."""

    description: GroupDescription | None = None
    database_error: str | None = None
    database_error_reason: str = "DatabaseUnreachable"

    def condition(self) -> DesiredCondition:
        if self.database_error is None:
            return DesiredCondition(DATABASE_REACHABLE, ConditionStatus.TRUE, "LagPolled", "")
        return DesiredCondition(
            DATABASE_REACHABLE, ConditionStatus.FALSE, self.database_error_reason, self.database_error
        )


def _previous_condition(status: Mapping[str, Any], condition_type: str) -> DesiredCondition | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == condition_type:
            return DesiredCondition(
                condition_type,
                ConditionStatus(condition.get("status", "Unknown")),
                str(condition.get("reason") or "Unknown"),
                str(condition.get("message") or ""),
            )
    return None


async def reconcile_consumer_group(
    context: OperatorContext,
    body: Mapping[str, Any],
    *,
    lag: LagObservation | None = None,
) -> None:
    """Apply the group's Deployment and write its status (with ``lag`` when the caller polled it)."""
    try:
        group = ConsumerGroup.model_validate(body)
    except ValidationError as error:
        await report_invalid_spec(context, body, error)
        return
    namespace = str(body["metadata"]["namespace"])
    owner = Owner.from_body(body)
    current_status = body.get("status") or {}
    fields: dict[str, Any] = {
        "selector": selector_string(owner),
        "replicas": int(current_status.get("replicas") or 0),
        "readyReplicas": int(current_status.get("readyReplicas") or 0),
    }
    specific: list[DesiredCondition] = []
    informational: list[DesiredCondition] = []
    stalled: DesiredCondition | None = None
    stream_body = await context.kubernetes.get_custom_object("EventStream", namespace, group.spec.stream_ref.name)
    if stream_body is None:
        specific.append(
            DesiredCondition(
                STREAM_FOUND,
                ConditionStatus.FALSE,
                "StreamNotFound",
                f"EventStream {group.spec.stream_ref.name!r} not found in namespace {namespace!r}",
            )
        )
    else:
        stream = EventStream.model_validate(stream_body)
        specific.append(DesiredCondition(STREAM_FOUND, ConditionStatus.TRUE, "StreamFound", stream.stream_name))
        try:
            database = await resolve_database(context, namespace, stream.spec.database)
            manifest = consumer_deployment(
                group,
                stream,
                namespace=namespace,
                owner=owner,
                default_image=context.settings.image,
                database_environment=database.pod_environment,
            )
        except DatabaseSecretError as error:
            specific.append(DesiredCondition(WORKLOAD_AVAILABLE, ConditionStatus.FALSE, error.reason, str(error)))
        except UnsupportedSpecError as error:
            stalled = DesiredCondition(WORKLOAD_AVAILABLE, ConditionStatus.FALSE, error.reason, str(error))
            specific.append(stalled)
        else:
            deployment = await context.kubernetes.apply_deployment(manifest)
            state = deployment_state(deployment)
            fields["replicas"] = state.replicas
            fields["readyReplicas"] = state.ready_replicas
            specific.append(workload_available(state, group.spec.replicas))
            delivery = DeliverySemantics(stream.spec.delivery_semantics.value)
            idle = idle_replicas(group.spec.replicas, stream.spec.partitions, delivery)
            fields["idleReplicas"] = idle
            informational.append(idle_replicas_condition(idle, stream.spec.partitions))
    database_condition = lag.condition() if lag is not None else _previous_condition(current_status, DATABASE_REACHABLE)
    if database_condition is not None:
        specific.append(database_condition)
    if lag is not None and lag.description is not None:
        lag_fields = lag_status_fields(lag.description, observed_at=datetime.now(UTC))
        if lag_changed(current_status, lag_fields):
            fields.update(lag_fields)
    await write_status(context.kubernetes, body, fields, [*roll_up(specific, stalled=stalled), *informational])


async def poll_stream_lag(
    context: OperatorContext, namespace: str, stream_object_name: str, group_names: Sequence[str]
) -> dict[str, LagObservation]:
    """One observation per named group of one EventStream, read with one database session; empty when the
    EventStream does not exist (each group then reports StreamFound=False itself)."""
    stream_body = await context.kubernetes.get_custom_object("EventStream", namespace, stream_object_name)
    if stream_body is None:
        return {}
    stream = EventStream.model_validate(stream_body)

    async def describe_all(store: EventStore) -> dict[str, LagObservation]:
        described: dict[str, LagObservation] = {}
        readers = store.consumer_groups()
        for group_name in group_names:
            try:
                described[group_name] = LagObservation(await readers.describe(stream.stream_name, group_name))
            except (GroupNotFoundError, StreamNotFoundError):
                described[group_name] = LagObservation()
        return described

    try:
        database = await resolve_database(context, namespace, stream.spec.database)
        return await context.databases.run(database.target, describe_all)
    except (DatabaseUnavailableError, DatabaseSecretError) as error:
        failed = LagObservation(database_error=str(error), database_error_reason=error.reason)
        return dict.fromkeys(group_names, failed)
