"""Reconciling a RetentionPolicy: which EventStreams it matches, and pruning them when a run is due.

Every reconcile (on change, and on each periodic resync) decides from the schedule, the cleanup window and the
``sluice.dev/run-requested`` annotation whether a run is due (``reconcile.retention_schedule``); a due run
prunes each matched stream in its own database through the runtime's ``prune_stream`` (bounded batches, so
appends go on meanwhile) and records the run in status. A database that cannot be reached fails the run:
``Enforced`` turns False and the run is tried again at the next resync, since ``lastRunTime`` did not move.

Between runs every reconcile also asks each matched stream's database whether it answers
(``DatabaseReachable``), as the other kinds do on each resync: a policy whose database is down is not Ready
even when no run is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from sluice.core.errors import SluiceError, StreamNotFoundError
from sluice.services.retention import PruneReport, prune_stream
from sluice.store import EventStore
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.database_targets import resolve_database
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.event_streams import EventStream
from sluice_operator.models.retention_policies import RetentionPolicy
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.databases import DatabaseTarget
from sluice_operator.reconcile.retention_limits import prune_status_fields, runtime_limits
from sluice_operator.reconcile.retention_policies import matched_stream_names
from sluice_operator.reconcile.retention_schedule import RUN_REQUESTED_ANNOTATION, RunReason, run_decision

__all__ = ["DATABASE_REACHABLE", "KIND", "PRUNE_TIMEOUT_SECONDS", "parse_timestamp", "reconcile_retention_policy"]

KIND = "RetentionPolicy"
ENFORCED = "Enforced"
DATABASE_REACHABLE = "DatabaseReachable"
PRUNE_TIMEOUT_SECONDS = 3600.0
"""Longest one stream's prune may take before the run counts as failed (it resumes at the next run)."""


def parse_timestamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


async def _prune(
    context: OperatorContext, namespace: str, stream: EventStream, policy: RetentionPolicy, now: datetime
) -> PruneReport:
    database = await resolve_database(context, namespace, stream.spec.database)
    limits = runtime_limits(policy.spec)

    async def prune(store: EventStore) -> PruneReport:
        return await prune_stream(store, stream.stream_name, limits, now=now, ignore_window=True)

    return await context.databases.run(database.target, prune, timeout_seconds=PRUNE_TIMEOUT_SECONDS)


async def _databases_reachable(
    context: OperatorContext, namespace: str, streams: list[EventStream]
) -> DesiredCondition:
    """DatabaseReachable: whether every database of the matched streams answers (each asked once)."""
    targets: dict[DatabaseTarget, None] = {}
    try:
        for stream in streams:
            targets[(await resolve_database(context, namespace, stream.spec.database)).target] = None
        for target in targets:
            await context.databases.run(target, lambda store: store.check_backend())
    except (DatabaseSecretError, DatabaseUnavailableError) as error:
        return DesiredCondition(DATABASE_REACHABLE, ConditionStatus.FALSE, error.reason, str(error))
    return DesiredCondition(DATABASE_REACHABLE, ConditionStatus.TRUE, "Checked", f"{len(targets)} database(s) answer")


async def reconcile_retention_policy(context: OperatorContext, body: Mapping[str, Any]) -> None:
    try:
        policy = RetentionPolicy.model_validate(body)
    except ValidationError as error:
        await report_invalid_spec(context, body, error)
        return
    metadata = body["metadata"]
    namespace = str(metadata["namespace"])
    status = body.get("status") or {}
    stream_bodies = await context.kubernetes.list_custom_objects("EventStream", namespace)
    matched = matched_stream_names(policy.spec.stream_selector, stream_bodies)
    now = datetime.now(UTC)
    run_requested = (metadata.get("annotations") or {}).get(RUN_REQUESTED_ANNOTATION)
    decision = run_decision(
        schedule=policy.spec.schedule,
        window=policy.spec.cleanup_window,
        now=now,
        created_at=parse_timestamp(metadata.get("creationTimestamp")) or now,
        last_run_time=parse_timestamp(status.get("lastRunTime")),
        run_requested=run_requested,
        last_run_request=status.get("lastRunRequest"),
    )
    fields: dict[str, Any] = {"matchedStreams": matched, "nextRunTime": decision.next_run_time.isoformat()}
    by_name = {str(stream["metadata"]["name"]): stream for stream in stream_bodies}
    streams = [EventStream.model_validate(by_name[name]) for name in matched]
    if not decision.run:
        waiting = "waiting for the cleanup window" if decision.reason is RunReason.OUTSIDE_CLEANUP_WINDOW else "idle"
        enforced = DesiredCondition(
            ENFORCED,
            ConditionStatus.TRUE,
            decision.reason.value,
            f"{len(matched)} stream(s) matched; {waiting}; next run at {decision.next_run_time.isoformat()}",
        )
        reachable = await _databases_reachable(context, namespace, streams)
        await write_status(context.kubernetes, body, fields, roll_up([reachable, enforced]))
        return
    reports: list[PruneReport] = []
    try:
        for stream in streams:
            try:
                reports.append(await _prune(context, namespace, stream, policy, now))
            except StreamNotFoundError:
                continue  # its EventStream has not created it yet: nothing to prune
    except (DatabaseSecretError, DatabaseUnavailableError) as error:
        failed = DesiredCondition(ENFORCED, ConditionStatus.FALSE, error.reason, f"the run failed: {error}")
        unreachable = DesiredCondition(DATABASE_REACHABLE, ConditionStatus.FALSE, error.reason, str(error))
        await write_status(context.kubernetes, body, fields, roll_up([unreachable, failed]))
        return
    except SluiceError as error:
        failed = DesiredCondition(ENFORCED, ConditionStatus.FALSE, "PruneFailed", f"the run failed: {error}")
        await write_status(context.kubernetes, body, fields, roll_up([failed]))
        return
    fields |= prune_status_fields(reports) | {"lastRunTime": now.isoformat()}
    if run_requested is not None:
        fields["lastRunRequest"] = run_requested
    enforced = DesiredCondition(
        ENFORCED,
        ConditionStatus.TRUE,
        decision.reason.value,
        f"{len(matched)} stream(s) matched; the last run pruned {fields['prunedEvents']} event(s)",
    )
    reachable = DesiredCondition(DATABASE_REACHABLE, ConditionStatus.TRUE, "Pruned", "the run reached every database")
    await write_status(context.kubernetes, body, fields, roll_up([reachable, enforced]))
