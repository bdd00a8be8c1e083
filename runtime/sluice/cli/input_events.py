"""Reading events to append or enqueue from ``--data``, a file or stdin (JSON lines).

With ``--type T`` every JSON value is the data of an event of type T. Without it, every line must
be an envelope: ``{"type": "OrderPlaced", "data": {...}, "metadata": {...}, "id": "<uuid>"}``
(``metadata`` and ``id`` optional; a given id makes re-running the same append a no-op). Every line
is checked before anything is written, and a bad line is reported with its number.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from sluice.core.errors import InvalidArgumentError
from sluice.core.events import EventData

ENVELOPE_KEYS = frozenset({"type", "data", "metadata", "id"})


def parse_event(text: str, *, event_type: str | None, where: str) -> EventData:
    """One JSON value (or envelope) as EventData; InvalidArgumentError naming ``where`` if malformed."""
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(f"{where}: not valid JSON: {error}") from error
    except ValueError as error:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise InvalidArgumentError(f"{where}: a JSON number is too long: {error}") from error
    except RecursionError as error:
        raise InvalidArgumentError(f"{where}: the JSON is nested too deeply") from error
    if event_type is not None:
        return EventData(event_type=event_type, data=value)
    if not isinstance(value, dict) or "type" not in value or "data" not in value:
        raise InvalidArgumentError(
            f'{where}: expected an envelope {{"type": ..., "data": ...}} (or give --type to append plain values)'
        )
    unknown = set(value) - ENVELOPE_KEYS
    if unknown:
        raise InvalidArgumentError(
            f"{where}: unknown envelope keys {sorted(unknown)} (allowed: {sorted(ENVELOPE_KEYS)})"
        )
    if not isinstance(value["type"], str) or not value["type"]:
        raise InvalidArgumentError(f"{where}: 'type' must be a non-empty string")
    metadata = value.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidArgumentError(f"{where}: 'metadata' must be an object")
    event_id = uuid.uuid4()
    if "id" in value:
        try:
            event_id = uuid.UUID(str(value["id"]))
        except ValueError as error:
            raise InvalidArgumentError(f"{where}: 'id' must be a UUID, got {value['id']!r}") from error
    return EventData(event_type=value["type"], data=value["data"], metadata=metadata, event_id=event_id)


def parse_lines(lines: Iterable[str], *, event_type: str | None, source: str) -> list[EventData]:
    """Every non-blank line as an event, all checked before any is returned."""
    events = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            events.append(parse_event(line, event_type=event_type, where=f"{source} line {number}"))
    if not events:
        raise InvalidArgumentError(f"{source} holds no events")
    return events
