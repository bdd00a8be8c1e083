"""Structured logs: one JSON object per record, carrying the correlation id of the current context.

``configure_logging("INFO")`` installs one handler on the root logger (replacing the handlers it
installed before, so calling it twice does not duplicate lines). Every record gets a
``correlation_id`` attribute from ``correlation_context``, in JSON and plain-text output alike.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from sluice.core.errors import InvalidArgumentError
from sluice.observability.correlation import current_correlation_id

JSON_FIELDS = "{asctime}{levelname}{name}{message}{correlation_id}"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
_HANDLER_MARKER = "_sluice_handler"


class CorrelationIdFilter(logging.Filter):
    """Adds ``correlation_id`` (None outside a correlation context) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = current_correlation_id()
        return True


def json_formatter() -> logging.Formatter:
    """The JSON formatter: timestamp, level, logger, message, correlation id and any ``extra`` fields."""
    return JsonFormatter(
        JSON_FIELDS,
        style="{",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
    )


def configure_logging(level: str | int = "INFO", *, json: bool = True, stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) as JSON (or text), at ``level``.

    Returns the handler, so that callers (and tests) can remove it again."""
    if isinstance(level, str):
        resolved = logging.getLevelNamesMapping().get(level.upper())
        if resolved is None:
            raise InvalidArgumentError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        level = resolved
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if json else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(CorrelationIdFilter())
    setattr(handler, _HANDLER_MARKER, True)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARKER, False):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
