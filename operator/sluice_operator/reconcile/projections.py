"""What a Projection means: the Deployment running ``sluice project`` for it, and its conditions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.projections import Projection
from sluice_operator.reconcile.conditions import DesiredCondition
from sluice_operator.reconcile.ownership import Owner
from sluice_operator.reconcile.workloads import HTTP_PORT, ContainerSpec, deployment_manifest

__all__ = ["SOURCES_READY", "project_arguments", "projection_deployment", "sources_ready"]

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
        "--http-port",
        str(HTTP_PORT),
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


def sources_ready(missing: Sequence[str]) -> DesiredCondition:
    """SourcesReady: every source EventStream exists."""
    if not missing:
        return DesiredCondition(SOURCES_READY, ConditionStatus.TRUE, "SourcesFound", "")
    return DesiredCondition(
        SOURCES_READY,
        ConditionStatus.FALSE,
        "SourceNotFound",
        "EventStream(s) not found in this namespace: " + ", ".join(missing),
    )
