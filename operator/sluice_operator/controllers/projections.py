"""Reconciling a Projection: its Deployment of ``sluice project`` (a command still to come) and status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.database_targets import resolve_database
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.errors import DatabaseSecretError
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.event_streams import EventStream
from sluice_operator.models.projections import Projection
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.projections import projection_deployment, sources_ready
from sluice_operator.reconcile.runtime_commands import runtime_available
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
    runtime = runtime_available("project", "the projections issue")
    if not missing:
        reference = projection.spec.database or sources[0].spec.database
        try:
            database = await resolve_database(context, namespace, reference)
        except DatabaseSecretError as error:
            specific.append(DesiredCondition(WORKLOAD_AVAILABLE, ConditionStatus.FALSE, error.reason, str(error)))
        else:
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
    specific.append(runtime)
    stalled = runtime if runtime.status is not ConditionStatus.TRUE else None
    await write_status(context.kubernetes, body, {}, roll_up(specific, stalled=stalled))
