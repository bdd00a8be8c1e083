"""The JSON paths of declarative SQL projections: ``$`` followed by ``.field`` and ``[index]`` steps.

Only this subset (the operator's ``JSON_PATH_PATTERN``) exists: no wildcards, filters or recursion, so a
path names at most one value. PostgreSQL evaluates it (as a strict SQL/JSON path, see
``statements.json_path_parameters``), next to the rows it fills.
"""

from __future__ import annotations

import re

from sluice.core.errors import ProjectionTargetError

JSON_PATH_PATTERN = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$")
"""Copied from ``sluice_operator.models.projections.JSON_PATH_PATTERN`` (the runtime must not import
the operator); a test checks that the two stay equal."""
MAXIMUM_JSON_PATH_LENGTH = 512
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")


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
