"""Extending a lease is bounded like a visibility timeout: the lease may not end more than 100 years
(``MAX_DURATION``) from now. Stacked extensions used to push it past year 9999: an OverflowError on the
memory backend, and on PostgreSQL a lease stored for millennia, so a worker that died lost the message."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sluice import EventData, EventStore, InvalidArgumentError, StreamConfig, StreamType
from sluice.core.validation import MAX_DURATION


async def test_stacked_extensions_stop_at_the_limit(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    await store.enqueue("jobs", EventData("Job", {}))
    message = await store.dequeue("jobs", visibility_timeout=timedelta(seconds=30))
    assert message is not None
    await store.extend("jobs", message.receipt, by=MAX_DURATION - timedelta(days=1))
    with pytest.raises(InvalidArgumentError):
        await store.extend("jobs", message.receipt, by=timedelta(days=2))
    for _ in range(3):
        with pytest.raises(InvalidArgumentError):
            await store.extend("jobs", message.receipt, by=MAX_DURATION)
    await store.nack("jobs", message.receipt)  # the receipt is still good and the message comes back
    again = await store.dequeue("jobs")
    assert again is not None
    assert again.message_id == message.message_id
