"""Deterministic ids and source metadata of events a replay appends to another stream.

The id of a replayed event is a UUID version 5 of the replay's name and the source event's id, so a
replay that is resumed (after a crash between its append and its progress record) appends the same
ids again, and the target stream stores each once (appends are idempotent by event id). Another
replay (another name) of the same events gets other ids.
"""

from __future__ import annotations

import uuid
from typing import Any

from sluice.core.events import EventData, RecordedEvent

REPLAY_NAMESPACE = uuid.UUID("0d7c4a36-52d6-4c1f-9a8e-3b3f6d1c2e91")
"""The UUID namespace of replayed event ids (fixed forever: changing it would break resumption)."""

REPLAYED_FROM_KEY = "replayed_from"
"""The metadata key that points a replayed event at its source."""


def replayed_event_id(replay_name: str, source_event_id: uuid.UUID) -> uuid.UUID:
    """The id a replay gives its copy of ``source_event_id``."""
    return uuid.uuid5(REPLAY_NAMESPACE, f"{replay_name}/{source_event_id}")


def replayed_event(replay_name: str, event: RecordedEvent) -> EventData:
    """The copy of ``event`` a replay appends: same type, data, schema version and metadata, a
    deterministic id, and ``metadata["replayed_from"]`` naming the source stream, partition, offset,
    event id and the replay."""
    source: dict[str, Any] = {
        "replay": replay_name,
        "stream": event.stream_name,
        "partition": event.partition,
        "offset": event.offset,
        "event_id": str(event.event_id),
    }
    return EventData(
        event_type=event.event_type,
        data=event.data,
        metadata={**event.metadata, REPLAYED_FROM_KEY: source},
        event_id=replayed_event_id(replay_name, event.event_id),
        schema_version=event.schema_version,
    )
