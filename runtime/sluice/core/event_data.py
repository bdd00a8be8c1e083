"""EventData: an event to write, before the store gives it a stream, a partition and an offset.

It sits below the event-type registry (``event_types.py``), which turns registered classes into it,
and below ``events.py``, which decodes recorded events with that registry.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class EventData:
    """An event to write, given explicitly. Pydantic models and dataclasses are converted to this.

    ``data`` is anything JSON can hold, or ``bytes`` for an opaque payload.
    ``event_id`` makes appends idempotent: a stream stores each id once.
    """

    event_type: str
    data: Any
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    event_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    schema_version: int = 1
