"""Load a saga definition from a ``module:attribute`` spec, for ``sluice sagas run --saga``."""

from __future__ import annotations

import importlib
from typing import Any

from sluice.core.errors import HandlerSpecError
from sluice.services.sagas.definition import Saga
from sluice.services.sinks.handler import parse_handler_spec


def load_saga(spec: str) -> Saga:
    """Import the Saga ``spec`` names (``my_app.sagas:order_saga``); HandlerSpecError if it cannot be
    imported or is not a Saga."""
    module_name, attribute_path = parse_handler_spec(spec)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise HandlerSpecError(f"saga {spec!r}: cannot import module {module_name!r}: {error}") from error
    for attribute in attribute_path.split("."):
        if not hasattr(target, attribute):
            raise HandlerSpecError(f"saga {spec!r}: {module_name!r} has no attribute {attribute_path!r}")
        target = getattr(target, attribute)
    if not isinstance(target, Saga):
        raise HandlerSpecError(f"saga {spec!r}: {attribute_path!r} is a {type(target).__name__}, not a Saga")
    return target
