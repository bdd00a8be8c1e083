"""The JSON paths of declarative SQL projections: ``$`` followed by ``.field`` and ``[index]`` steps.

Only this subset (the operator's ``JSON_PATH_PATTERN``) exists: no wildcards, filters or recursion, so a
path names at most one value and evaluating it is a plain walk over the decoded payload.
"""

from __future__ import annotations

import re
from typing import Any, Final

from sluice.errors import ProjectionTargetError

JSON_PATH_PATTERN = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$")
"""Copied from ``sluice_operator.models.projections.JSON_PATH_PATTERN`` (the runtime must not import
the operator); a test checks that the two stay equal."""
MAXIMUM_JSON_PATH_LENGTH = 512
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")


class Missing:
    """The value of a path that leads nowhere in a payload (unlike JSON ``null``, which is a value)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()


def parse_json_path(path: object) -> tuple[str | int, ...]:
    """``$.order.lines[0]`` → ``("order", "lines", 0)``; ProjectionTargetError if not a valid path."""
    if not isinstance(path, str) or len(path) > MAXIMUM_JSON_PATH_LENGTH or JSON_PATH_PATTERN.fullmatch(path) is None:
        raise ProjectionTargetError(
            f"invalid JSON path {path!r}: use '$' followed by '.field' and '[index]' steps, such as '$.order_id'"
        )
    steps: list[str | int] = []
    for match in _STEP.finditer(path, 1):
        field, index = match.groups()
        steps.append(field if field is not None else int(index))
    return tuple(steps)


def evaluate(steps: tuple[str | int, ...], document: Any) -> Any:
    """The value at ``steps`` in ``document``, or MISSING."""
    value = document
    for step in steps:
        if isinstance(step, str):
            if not isinstance(value, dict) or step not in value:
                return MISSING
            value = value[step]
        else:
            if not isinstance(value, list) or step >= len(value):
                return MISSING
            value = value[step]
    return value
