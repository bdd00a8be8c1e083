"""Reconciling a Replay: its Job running ``sluice replay``, and its phase and progress in status (the
progress from the replay's record in the database, which the Job's process keeps up to date)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sluice.core.errors import ReplayNotFoundError
from sluice.services.replay import ReplayProgress, Replays
from sluice.store import EventStore
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.database_targets import resolve_database
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError
from sluice_operator.models.common import ConditionStatus, JobPhase
from sluice_operator.models.event_streams import EventStream
from sluice_operator.models.replays import Replay
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.databases import DatabaseTarget
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.replays import (
    job_state,
    replay_job,
    replay_phase,
    replay_progress_fields,
    replay_run_name,
    succeeded_condition,
)

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
            progress = await _recorded_progress(context, database.target, replay_run_name(replay))
            phase = replay_phase(state, progress)
            fields |= replay_progress_fields(progress)
            fields["phase"] = phase.value
            if state.start_time is not None:
                fields["startTime"] = state.start_time
            if state.completion_time is not None:
                fields["completionTime"] = state.completion_time
            specific.append(succeeded_condition(phase))
    await write_status(context.kubernetes, body, fields, roll_up(specific))


async def _recorded_progress(context: OperatorContext, target: DatabaseTarget, name: str) -> ReplayProgress | None:
    """The replay's record, None before its Job's process created it (or while the database is away: the
    status then keeps the last progress it showed)."""

    async def read(store: EventStore) -> ReplayProgress | None:
        try:
            return await Replays(store).progress(name)
        except ReplayNotFoundError:
            return None

    try:
        return await context.databases.run(target, read)
    except DatabaseUnavailableError:
        return None
