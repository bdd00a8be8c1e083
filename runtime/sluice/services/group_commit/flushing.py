"""Writing one lane's batch with one ``store.append_prepared`` call, and giving each caller its own outcome.

Each caller receives the slice of offsets its events were given. When the shared append fails:

- an error that one event could have caused (a ``DuplicateEventIdError`` when some ids are already
  stored, an ``InvalidArgumentError``, or an error that is not a ``SluiceError`` at all, such as a
  driver refusing one event's data) splits the batch in two halves, written one after the other, down
  to single callers: only the guilty caller fails, and the others are stored (in their original
  order, so keyed events keep their order). A batch is atomic, so resending its events is safe; their
  event ids were fixed when they were queued, so a resent event is never stored twice.
- any other ``SluiceError`` is about the stream or the connection (not found, a queue, archived,
  store closed, connection lost, permission denied): every caller of the batch receives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sluice.core.errors import DuplicateEventIdError, InvalidArgumentError, SluiceError
from sluice.core.events import AppendResult
from sluice.core.prepared_batches import joined
from sluice.services.group_commit.metrics import GroupCommitMetrics
from sluice.services.group_commit.pending import LaneKey, PendingAppend
from sluice.store import EventStore


def could_be_one_events_fault(error: Exception) -> bool:
    """Whether splitting the batch could leave the other callers unaffected by ``error``."""
    if isinstance(error, DuplicateEventIdError | InvalidArgumentError):
        return True
    return not isinstance(error, SluiceError)


async def write_batch(
    store: EventStore,
    key: LaneKey,
    batch: list[PendingAppend],
    *,
    metrics: GroupCommitMetrics,
    on_failure: Callable[[str], None],
) -> None:
    """Append the events of ``batch`` in one call and settle every caller's future.

    ``on_failure`` hears the stream name of every failed append (the router then looks its partition
    count up again). Cancellation propagates; the caller of this function settles what is left."""
    events = joined([pending.events for pending in batch])
    metrics.flushed(key.stream_name, len(events), time.monotonic() - min(pending.queued_at for pending in batch))
    try:
        result = await store.append_prepared(key.stream_name, events, partition=key.partition)
    except Exception as error:  # every error goes to the callers it belongs to
        on_failure(key.stream_name)
        if len(batch) > 1 and could_be_one_events_fault(error):
            metrics.split(key.stream_name)
            middle = len(batch) // 2
            await write_batch(store, key, batch[:middle], metrics=metrics, on_failure=on_failure)
            await write_batch(store, key, batch[middle:], metrics=metrics, on_failure=on_failure)
            return
        for pending in batch:
            pending.fail(error)
        return
    _hand_out(result, batch)


def _hand_out(result: AppendResult, batch: list[PendingAppend]) -> None:
    """Give each caller the offsets (and partitions) of its own events, in the order it gave them."""
    start = 0
    for pending in batch:
        end = start + len(pending.events)
        pending.succeed(
            AppendResult(
                stream_name=result.stream_name,
                partitions=result.partitions[start:end],
                offsets=result.offsets[start:end],
                deduplicated=result.deduplicated,
            )
        )
        start = end
