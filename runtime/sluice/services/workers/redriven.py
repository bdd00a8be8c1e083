"""A redriven dead letter as the worker hands it to the sink or handler: a ConsumedEvent with the
original event's stream, partition, offset, id, type, payload, metadata and timestamp.

Its ``commit()`` does nothing: the worker completes a redrive itself once the delivery succeeded
(the dead letter is deleted, which is the redrive's commit), whatever the commit strategy.
``global_position`` reads (0, 0): a redriven event is delivered outside the global log.
"""

from __future__ import annotations

from sluice.core.events import RecordedEvent
from sluice.store.values.consumed import ConsumedEvent
from sluice.store.values.dead_letters import GroupDeadLetter, event_row


class RedrivenEvent(ConsumedEvent):
    """The event of a redriven dead letter (``dead_letter`` says which)."""

    __slots__ = ("dead_letter",)

    def __init__(self, dead_letter: GroupDeadLetter) -> None:
        RecordedEvent.__init__(self, event_row(dead_letter), dead_letter.stream_name, dead_letter.partition)
        self.dead_letter = dead_letter

    async def commit(self) -> None:
        """Nothing to do: the worker completes the redrive after a successful delivery."""
