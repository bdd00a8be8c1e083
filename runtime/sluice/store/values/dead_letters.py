"""What a consumer group's dead letter is: the original event as it was stored (id, type, payload,
metadata, source stream, partition and offset), why and when it failed, and whether it waits to be
delivered to the group again (redrive)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sluice.core.events import RecordedEvent
from sluice.core.payloads import decode_payload

REDRIVEN_GLOBAL_POSITION = (0, 0)
"""A redriven event is delivered outside the global log: its ``global_position`` reads (0, 0)."""


class DeliveryOutcome(Protocol):
    """What ``FailedDelivery.from_outcome`` reads of a delivery's outcome
    (``sluice.services.retries.delivery.DeliveryOutcome``)."""

    @property
    def error(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def first_attempt_at(self) -> datetime: ...
    @property
    def last_attempt_at(self) -> datetime: ...
    @property
    def first_failure_at(self) -> datetime | None: ...
    @property
    def last_failure_at(self) -> datetime | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class FailedDelivery:
    """Why one event is being dead-lettered: the outcome of its last delivery, flattened."""

    error: str
    attempts: int
    first_failure_at: datetime
    last_failure_at: datetime

    @classmethod
    def from_outcome(cls, outcome: DeliveryOutcome) -> FailedDelivery:
        """The failure of an outcome that was not delivered (``error`` set)."""
        if outcome.error is None:
            raise ValueError("a delivered outcome is not a failure")
        return cls(
            error=outcome.error,
            attempts=outcome.attempts,
            first_failure_at=outcome.first_failure_at or outcome.first_attempt_at,
            last_failure_at=outcome.last_failure_at or outcome.last_attempt_at,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class GroupDeadLetter:
    """One event a consumer group gave up on, with its failure history.

    ``attempts`` counts every failed delivery, over the first burial and any failed redrives;
    ``first_failure_at`` is the first of them, ``last_failure_at`` and ``error`` the latest.
    ``redrive_requested_at`` is set while the dead letter waits for the group to receive it again.
    """

    dead_letter_id: int
    stream_name: str
    group_id: str
    partition: int
    offset: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    content_type: str
    payload: bytes
    metadata: Mapping[str, Any]
    correlation_id: str | None
    appended_at: datetime
    error: str
    attempts: int
    first_failure_at: datetime
    last_failure_at: datetime
    dead_lettered_at: datetime
    dead_letter_stream: str
    consumer_id: str
    redrives: int = 0
    redrive_requested_at: datetime | None = None

    @property
    def data(self) -> Any:
        """The payload: JSON decoded, or ``bytes`` for binary events."""
        return decode_payload(self.payload, self.content_type)

    @property
    def awaiting_redrive(self) -> bool:
        return self.redrive_requested_at is not None

    def original_event(self) -> RecordedEvent:
        """The event as the group first received it (same stream, partition, offset, id and payload)."""
        return RecordedEvent(event_row(self), self.stream_name, self.partition)


def event_row(letter: GroupDeadLetter) -> tuple[Any, ...]:
    """The stored columns of the original event, in RecordedEvent's order (see sluice.core.events.EventRow)."""
    return (
        letter.offset,
        letter.event_id,
        letter.event_type,
        letter.schema_version,
        letter.content_type,
        letter.payload,
        dict(letter.metadata),
        letter.correlation_id,
        letter.appended_at,
        *REDRIVEN_GLOBAL_POSITION,
    )
