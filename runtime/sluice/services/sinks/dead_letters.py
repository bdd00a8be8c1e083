"""Writing a consumer group's dead letter: an event that failed every delivery attempt.

Two records, both idempotent, both written before the event is committed past:

- a row of the group's dead letters (``sluice.services.retries``): what ``sluice dead-letters --group``,
  the REST API and the library list, inspect, redrive and purge;
- an event in the dead-letter stream (default ``<stream>.<group>.dead-letter``), for anyone who
  consumes or alerts on dead letters: the original event type, payload and event id (so a second
  dead-lettering of the same event, after a crash before the commit or a failed redrive, is
  deduplicated by the stream), and under the ``dead_letter`` metadata key the error, the attempts,
  the failure timestamps and where the event came from. The stream is created on first use and is
  append-only: purging a dead letter does not remove its copy there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice.core.events import EventData, RecordedEvent
from sluice.core.names import validate_stream_name
from sluice.core.streams import StreamConfig
from sluice.services.retries.access import group_dead_letters
from sluice.store.contracts.dead_letters import DeadLetterBurial
from sluice.store.values.dead_letters import FailedDelivery, GroupDeadLetter

if TYPE_CHECKING:
    from sluice.store import EventStore

DEAD_LETTER_METADATA_KEY = "dead_letter"


class DeadLetterWriter:
    """Buries failed events of one group: a dead-letter row and an event in the dead-letter stream."""

    def __init__(self, store: EventStore, *, stream_name: str, group_id: str, consumer_id: str) -> None:
        self.store = store
        self.stream_name = validate_stream_name(stream_name)
        self.group_id = group_id
        self.consumer_id = consumer_id
        self._stream_ready = False

    async def write(self, event: RecordedEvent, failure: FailedDelivery) -> GroupDeadLetter:
        """Record ``event`` with its failure history. Raises if the store fails (the caller then
        does not commit the event, so it is delivered again)."""
        letter = await group_dead_letters(self.store).bury(
            event,
            failure,
            DeadLetterBurial(group_id=self.group_id, consumer_id=self.consumer_id, dead_letter_stream=self.stream_name),
        )
        await self._append(event, failure, letter)
        return letter

    async def _append(self, event: RecordedEvent, failure: FailedDelivery, letter: GroupDeadLetter) -> None:
        if not self._stream_ready:
            await self.store.create_stream(StreamConfig(name=self.stream_name))  # a no-op when it exists
            self._stream_ready = True
        history = {
            "dead_letter_id": letter.dead_letter_id,
            "error": failure.error,
            "attempts": failure.attempts,
            "first_failure_at": failure.first_failure_at.isoformat(),
            "last_failure_at": failure.last_failure_at.isoformat(),
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
