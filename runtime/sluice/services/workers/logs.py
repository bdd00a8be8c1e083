"""JSON log lines on stderr (one object per line), for workers whose logs a cluster collects."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

JSON_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send every log record to stderr as one JSON object (replaces the root logger's handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(JSON_LOG_FORMAT, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
