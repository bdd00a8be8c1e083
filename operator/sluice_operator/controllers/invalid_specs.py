"""Reporting an object the models cannot parse (the API server accepted it, but a rule only the operator
checks refused it): Stalled with reason InvalidSpec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.status import write_status
from sluice_operator.models.common import ConditionStatus
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up

__all__ = ["report_invalid_spec"]

MAXIMUM_MESSAGE_LENGTH = 2000


async def report_invalid_spec(context: OperatorContext, body: Mapping[str, Any], error: ValidationError) -> None:
    stalled = DesiredCondition("InvalidSpec", ConditionStatus.TRUE, "InvalidSpec", str(error)[:MAXIMUM_MESSAGE_LENGTH])
    await write_status(context.kubernetes, body, {}, roll_up([], stalled=stalled))
