"""One caller's append waiting in a lane, and the key of the lane it waits in.

A lane holds the appends that may share one ``store.append_prepared`` call: same stream and same partition
(or none given, so the store spreads the whole batch). Each event keeps its own correlation id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from sluice.core.events import AppendResult
from sluice.core.prepared_batches import PreparedBatch


@dataclasses.dataclass(frozen=True, slots=True)
class LaneKey:
    """Where a batch goes: appends with equal keys can be written in one transaction."""

    stream_name: str
    partition: int | None
    """The partition the events were routed to, or None to let the store spread the batch."""


@dataclasses.dataclass(slots=True)
class PendingAppend:
    """A caller's events, validated and encoded once (their event ids fixed, so that a retry writes the
    same events), and the future through which it receives its own result or error."""

    events: PreparedBatch
    result: asyncio.Future[AppendResult]
    queued_at: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def abandoned(self) -> bool:
        """The caller was cancelled before its events were sent: they are left out of the batch."""
        return self.result.cancelled()

    def succeed(self, result: AppendResult) -> None:
        if not self.result.done():
            self.result.set_result(result)

    def fail(self, error: BaseException) -> None:
        if not self.result.done():
            self.result.set_exception(error)
