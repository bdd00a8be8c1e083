"""The dead-letter stream of a consumer group: where events go that failed every delivery attempt.

The dead letter keeps the original event type, payload and event id (so a second dead-lettering of
the same event, after a crash before the commit, is deduplicated by the stream), and adds under the
``dead_letter`` metadata key: the error, the attempts, the attempt timestamps and where the event
came from. The stream is created on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice.events import EventData, RecordedEvent
from sluice.names import validate_stream_name
from sluice.sinks.retry import DeliveryOutcome
from sluice.streams import StreamConfig

if TYPE_CHECKING:
    from sluice.store import EventStore

DEAD_LETTER_METADATA_KEY = "dead_letter"


def default_dead_letter_stream(stream_name: str, group_id: str) -> str:
    """``<stream>.<group>.dead-letter``, validated (InvalidNameError if too long)."""
    return validate_stream_name(f"{stream_name}.{group_id}.dead-letter")


class DeadLetterWriter:
    """Appends failed events to one dead-letter stream."""

    def __init__(self, store: EventStore, *, stream_name: str, group_id: str, consumer_id: str) -> None:
        self.store = store
        self.stream_name = validate_stream_name(stream_name)
        self.group_id = group_id
        self.consumer_id = consumer_id
        self._stream_ready = False

    async def write(self, event: RecordedEvent, outcome: DeliveryOutcome) -> None:
        """Append ``event`` with its failure history. Raises (and writes nothing) if the store fails."""
        if not self._stream_ready:
            await self.store.create_stream(StreamConfig(name=self.stream_name))  # a no-op when it exists
            self._stream_ready = True
        history = {
            "error": outcome.error,
            "attempts": outcome.attempts,
            "first_attempt_at": outcome.first_attempt_at.isoformat(),
            "last_attempt_at": outcome.last_attempt_at.isoformat(),
            "dead_lettered_at": datetime.now(UTC).isoformat(),
            "stream": event.stream_name,
            "partition": event.partition,
            "offset": event.offset,
            "group": self.group_id,
            "consumer_id": self.consumer_id,
        }
        dead_letter = EventData(
            event_type=event.event_type,
            data=event.data,
            metadata={**event.metadata, DEAD_LETTER_METADATA_KEY: history},
            event_id=event.event_id,
            schema_version=event.schema_version,
        )
        await self.store.append(self.stream_name, dead_letter, correlation_id=event.correlation_id)
