"""What a RetentionPolicy means: which EventStreams its selector matches."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sluice_operator.models.retention_policies import StreamSelector

__all__ = ["matched_stream_names", "name_pattern"]


def name_pattern(wildcard: str) -> re.Pattern[str]:
    """A wildcard such as ``orders*`` as a regular expression: ``*`` is any run of characters, all else literal."""
    return re.compile(".*".join(re.escape(part) for part in wildcard.split("*")))


def matched_stream_names(selector: StreamSelector, event_streams: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the EventStreams (objects as JSON) that the selector covers, sorted: those whose name matches
    any of ``names``, and those carrying all of ``matchLabels``."""
    patterns = [name_pattern(wildcard) for wildcard in selector.names or []]
    wanted_labels = selector.match_labels or {}
    matched = set()
    for stream in event_streams:
        metadata = stream.get("metadata") or {}
        name = str(metadata.get("name", ""))
        labels = metadata.get("labels") or {}
        by_name = any(pattern.fullmatch(name) for pattern in patterns)
        by_labels = bool(wanted_labels) and all(labels.get(key) == value for key, value in wanted_labels.items())
        if by_name or by_labels:
            matched.add(name)
    return sorted(matched)
