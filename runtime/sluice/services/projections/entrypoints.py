"""``sluice project --handler module:attribute``: the attribute is a ``Projection`` (run under the name
and sources the command line gives) or a function called with each batch, ``(events, context)``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from sluice.core.errors import HandlerSpecError
from sluice.services.projections.options import ProjectionOptions
from sluice.services.projections.projection import Projection
from sluice.services.sinks.handler import parse_handler_spec


def load_projection(spec: str, *, name: str, sources: Sequence[str], options: ProjectionOptions) -> Projection:
    """Import what ``spec`` names and make it the projection ``name`` of ``sources``; HandlerSpecError if
    it cannot be imported or is neither a Projection nor callable."""
    module_name, attribute_path = parse_handler_spec(spec)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise HandlerSpecError(f"handler {spec!r}: cannot import module {module_name!r}: {error}") from error
    for attribute in attribute_path.split("."):
        if not hasattr(target, attribute):
            raise HandlerSpecError(f"handler {spec!r}: {module_name!r} has no attribute {attribute_path!r}")
        target = getattr(target, attribute)
    if isinstance(target, Projection):
        return target.copy(name, sources=sources, options=options)
    if not callable(target):
        raise HandlerSpecError(
            f"handler {spec!r}: {attribute_path!r} is a {type(target).__name__}, neither a Projection nor callable"
        )
    projection = Projection(name, sources=sources, options=options)
    projection.on_batch(target)
    return projection
