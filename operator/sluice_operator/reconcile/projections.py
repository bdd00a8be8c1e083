"""What a Projection means: the Deployment running ``sluice project`` for it, and its conditions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sluice.services.projections.state import ProjectionStatus
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.projections import Projection
from sluice_operator.reconcile.conditions import DesiredCondition, format_time
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.workloads import ContainerSpec, deployment_manifest

__all__ = [
    "SOURCES_READY",
    "project_arguments",
    "projection_deployment",
    "projection_status_fields",
    "sources_ready",
]

SOURCES_READY = "SourcesReady"


def project_arguments(projection: Projection, source_stream_names: Sequence[str]) -> list[str]:
    """``project --name ... --source ... (--sql-target JSON | --handler module:function)``: the command
    line proposed to the projections issue."""
    spec = projection.spec
    arguments = ["project", "--name", projection.metadata.name or ""]
    for stream_name in source_stream_names:
        arguments += ["--source", stream_name]
    if spec.target.sql is not None:
        arguments += ["--sql-target", json.dumps(spec.target.sql.to_manifest(), sort_keys=True)]
    elif spec.target.entrypoint is not None:
        arguments += ["--handler", spec.target.entrypoint.function]
    arguments += [
        "--batch-size",
        str(spec.batch_size),
        "--reset-generation",
        str(spec.reset_generation),
    ]
    return arguments


def projection_deployment(
    projection: Projection,
    source_stream_names: Sequence[str],
    *,
    namespace: str,
    owner: Owner,
    default_image: str,
    database_environment: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """One replica (a projection applies events in order, so it has a single writer)."""
    target = projection.spec.target
    image = target.entrypoint.image if target.entrypoint is not None else default_image
    container = ContainerSpec(
        image=image, arguments=project_arguments(projection, source_stream_names), environment=database_environment
    )
    return deployment_manifest(owner, namespace, replicas=1, container=container)


def sources_ready(missing: Sequence[str], elsewhere: Sequence[str] = (), database: str = "") -> DesiredCondition:
    """SourcesReady: every source EventStream exists, and in the projection's database (``database``, for the
    message): a projection's pod reads one database, so a source stored in another would never be found."""
    if missing:
        return DesiredCondition(
            SOURCES_READY,
            ConditionStatus.FALSE,
            "SourceNotFound",
            "EventStream(s) not found in this namespace: " + ", ".join(missing),
        )
    if elsewhere:
        return DesiredCondition(
            SOURCES_READY,
            ConditionStatus.FALSE,
            "SourcesOnOtherDatabases",
            f"a projection reads its sources from one database ({database}); EventStream(s) "
            + ", ".join(elsewhere)
            + " live in another (their spec.database): put its sources on one database or split the projection",
        )
    return DesiredCondition(SOURCES_READY, ConditionStatus.TRUE, "SourcesFound", "")


def projection_status_fields(observed: ProjectionStatus, previous: Mapping[str, Any]) -> dict[str, Any]:
    """``position``, ``lag``, ``deadLetters`` and ``rebuild`` from the runtime's view of the projection.
    ``lag.observedAt`` keeps its previous value while events and whole seconds are unchanged, so a caught-up
    projection's status is not rewritten on every resync."""
    lag = {"events": observed.lag_events, "seconds": float(int(observed.lag_seconds))}
    previous_lag = dict(previous.get("lag") or {})
    observed_at = previous_lag.pop("observedAt", None)
    if previous_lag != lag or observed_at is None:
        observed_at = format_time(observed.observed_at)
    fields: dict[str, Any] = {
        "position": None if observed.position is None else str(observed.position),
        "lag": lag | {"observedAt": observed_at},
        "deadLetters": observed.dead_letters,
    }
    rebuild = observed.rebuild
    if rebuild is not None:
        fields["rebuild"] = {
            "phase": rebuild.phase.value,
            "eventsDone": min(rebuild.done, rebuild.total) if rebuild.running else rebuild.done,
            "eventsTotal": rebuild.total,
            "percent": rebuild.percent,
        }
    return fields
