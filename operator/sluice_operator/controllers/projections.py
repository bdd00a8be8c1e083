"""Reconciling a Projection: its Deployment of ``sluice project``, and its position, lag and rebuild progress
in status (read from the projection's checkpoint in the database, which its pod keeps up to date)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sluice.core.errors import ProjectionNotFoundError
from sluice.services.projections.status import ProjectionStatus, projection_status
from sluice.store import EventStore
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.database_targets import resolve_database
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.event_streams import EventStream
from sluice_operator.models.projections import Projection
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.databases import DatabaseTarget
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.projections import projection_deployment, projection_status_fields, sources_ready
from sluice_operator.reconcile.workloads import WORKLOAD_AVAILABLE, deployment_state, workload_available

__all__ = ["KIND", "reconcile_projection"]

KIND = "Projection"


async def reconcile_projection(context: OperatorContext, body: Mapping[str, Any]) -> None:
    try:
        projection = Projection.model_validate(body)
    except ValidationError as error:
        await report_invalid_spec(context, body, error)
        return
    namespace = str(body["metadata"]["namespace"])
    sources: list[EventStream] = []
    missing: list[str] = []
    for source in projection.spec.sources:
        source_body = await context.kubernetes.get_custom_object("EventStream", namespace, source)
        if source_body is None:
            missing.append(source)
        else:
            sources.append(EventStream.model_validate(source_body))
    specific = [sources_ready(missing)]
    fields: dict[str, Any] = {}
    if not missing:
        reference = projection.spec.database or sources[0].spec.database
        try:
            database = await resolve_database(context, namespace, reference)
        except DatabaseSecretError as error:
            specific.append(DesiredCondition(WORKLOAD_AVAILABLE, ConditionStatus.FALSE, error.reason, str(error)))
        else:
            elsewhere = await _sources_elsewhere(context, namespace, sources, database.target)
            if elsewhere:
                specific = [sources_ready(missing, elsewhere, database.target.display_name)]
                await write_status(context.kubernetes, body, fields, roll_up(specific))
                return
            manifest = projection_deployment(
                projection,
                [source.stream_name for source in sources],
                namespace=namespace,
                owner=Owner.from_body(body),
                default_image=context.settings.image,
                database_environment=database.pod_environment,
            )
            deployment = await context.kubernetes.apply_deployment(manifest)
            specific.append(workload_available(deployment_state(deployment), 1))
            observed = await _observed_status(context, database.target, projection.metadata.name or "")
            if observed is not None:
                fields = projection_status_fields(observed, body.get("status") or {})
    await write_status(context.kubernetes, body, fields, roll_up(specific))


async def _sources_elsewhere(
    context: OperatorContext, namespace: str, sources: list[EventStream], target: DatabaseTarget
) -> list[str]:
    """The sources whose database (host, port, database name and schema: credentials aside) is not the
    projection's. A source whose database cannot be resolved is left to its own EventStream's status."""
    elsewhere: list[str] = []
    for source in sources:
        try:
            resolved = await resolve_database(context, namespace, source.spec.database)
        except DatabaseSecretError:
            continue
        if resolved.target.display_name != target.display_name:
            elsewhere.append(source.metadata.name or source.stream_name)
    return elsewhere


async def _observed_status(context: OperatorContext, target: DatabaseTarget, name: str) -> ProjectionStatus | None:
    """The projection as its checkpoint shows it; None before its pod first ran (or while the database is
    away: the status then keeps what it showed last)."""

    async def read(store: EventStore) -> ProjectionStatus | None:
        try:
            return await projection_status(store, name)
        except ProjectionNotFoundError:
            return None

    try:
        return await context.databases.run(target, read)
    except DatabaseUnavailableError:
        return None
