"""Reconciling a Replay: its Job running ``sluice replay`` (a command still to come), phase and status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.database_targets import resolve_database
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.errors import DatabaseSecretError
from sluice_operator.models.common import ConditionStatus, JobPhase
from sluice_operator.models.event_streams import EventStream
from sluice_operator.models.replays import Replay
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.replays import job_state, replay_job, succeeded_condition
from sluice_operator.reconcile.runtime_commands import runtime_available

__all__ = ["KIND", "reconcile_replay"]

KIND = "Replay"
SOURCE_FOUND = "SourceFound"
TARGET_KINDS = {"consumer_group": "ConsumerGroup", "projection": "Projection", "stream": "EventStream"}


async def reconcile_replay(context: OperatorContext, body: Mapping[str, Any]) -> None:
    try:
        replay = Replay.model_validate(body)
    except ValidationError as error:
        await report_invalid_spec(context, body, error)
        return
    namespace = str(body["metadata"]["namespace"])
    fields: dict[str, Any] = {}
    specific: list[DesiredCondition] = []
    source_body = await context.kubernetes.get_custom_object("EventStream", namespace, replay.spec.source.stream)
    target_attribute, target_name = next(
        (attribute, value)
        for attribute in TARGET_KINDS
        if (value := getattr(replay.spec.target, attribute)) is not None
    )
    target_body = await context.kubernetes.get_custom_object(TARGET_KINDS[target_attribute], namespace, target_name)
    if source_body is None or target_body is None:
        missing = replay.spec.source.stream if source_body is None else target_name
        specific.append(
            DesiredCondition(SOURCE_FOUND, ConditionStatus.FALSE, "ReferenceNotFound", f"{missing!r} not found")
        )
        fields["phase"] = JobPhase.PENDING.value
    else:
        source = EventStream.model_validate(source_body)
        specific.append(DesiredCondition(SOURCE_FOUND, ConditionStatus.TRUE, "ReferencesFound", ""))
        if target_attribute == "stream":
            target_name = EventStream.model_validate(target_body).stream_name
        try:
            database = await resolve_database(context, namespace, source.spec.database)
        except DatabaseSecretError as error:
            specific.append(DesiredCondition("JobCreated", ConditionStatus.FALSE, error.reason, str(error)))
            fields["phase"] = JobPhase.PENDING.value
        else:
            job = await context.kubernetes.apply_job(
                replay_job(
                    replay,
                    source.stream_name,
                    target_name,
                    namespace=namespace,
                    owner=Owner.from_body(body),
                    image=context.settings.image,
                    database_environment=database.pod_environment,
                )
            )
            state = job_state(job)
            fields["phase"] = state.phase.value
            if state.start_time is not None:
                fields["startTime"] = state.start_time
            if state.completion_time is not None:
                fields["completionTime"] = state.completion_time
            specific.append(succeeded_condition(state.phase))
    runtime = runtime_available("replay", "the stream-operations issue")
    specific.append(runtime)
    stalled = runtime if runtime.status is not ConditionStatus.TRUE else None
    await write_status(context.kubernetes, body, fields, roll_up(specific, stalled=stalled))
