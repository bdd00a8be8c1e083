"""Which JSON payloads PostgreSQL's ``jsonb`` cannot read although Python wrote them: ``NaN`` and
``Infinity`` (Python's JSON allows them, standard JSON does not) and the NUL character (``\\u0000``, which
``jsonb`` cannot hold). A SQL target skips such an event with a warning, as it skips a binary payload:
passed to PostgreSQL, one of them failed the whole batch, and the projection stopped on it for good.

The check is cheap for the usual payload: only text holding one of the suspect spellings is parsed.
"""

from __future__ import annotations

import json
from typing import Any

_SUSPECT_SPELLINGS = ("NaN", "Infinity", "\\u0000")


def jsonb_unreadable(payload: str) -> str | None:
    """Why ``jsonb`` cannot read ``payload`` (JSON text written by Sluice), or None when it can."""
    if not any(spelling in payload for spelling in _SUSPECT_SPELLINGS):
        return None
    try:
        value = json.loads(payload, parse_constant=_refuse_constant)
    except ValueError as error:
        return str(error)
    if _holds_nul(value):
        return "it holds the NUL character (\\u0000)"
    return None


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _holds_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds the NUL character in a string or a key (walked without recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
