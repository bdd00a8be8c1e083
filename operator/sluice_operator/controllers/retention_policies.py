"""Reconciling a RetentionPolicy: which EventStreams it matches. Pruning itself waits for the runtime's
retention API (the stream-operations issue); until then the policy reports Stalled with that reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.retention_policies import RetentionPolicy
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.retention_policies import matched_stream_names

__all__ = ["KIND", "reconcile_retention_policy"]

KIND = "RetentionPolicy"
ENFORCED = "Enforced"


async def reconcile_retention_policy(context: OperatorContext, body: Mapping[str, Any]) -> None:
    try:
        policy = RetentionPolicy.model_validate(body)
    except ValidationError as error:
        await report_invalid_spec(context, body, error)
        return
    namespace = str(body["metadata"]["namespace"])
    streams = await context.kubernetes.list_custom_objects("EventStream", namespace)
    matched = matched_stream_names(policy.spec.stream_selector, streams)
    enforced = DesiredCondition(
        ENFORCED,
        ConditionStatus.FALSE,
        "RetentionRuntimePending",
        f"{len(matched)} stream(s) matched; pruning needs the runtime's retention API (the stream-operations "
        "issue), which this Sluice release does not have yet",
    )
    await write_status(context.kubernetes, body, {"matchedStreams": matched}, roll_up([enforced], stalled=enforced))
