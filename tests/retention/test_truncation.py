"""The truncation signal on both backends: a group that enforce-mode retention left behind the start of
the log is told (counted, logged, on the batch and the consumption), then handled by its policy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from sluice import ConsumerGroupOptions, DeliverySemantics, EventData, EventStore, OffsetCommitStrategy, StreamConfig
from sluice.core.errors import ConsumerTruncatedError
from sluice.observability.metrics import default_metrics
from sluice.services.retention import RetentionLimits, prune_stream
from sluice.store.values.consumed import ConsumedBatch
from sluice.store.values.consumer_group_options import TruncationPolicy

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


async def fill(store: EventStore, stream: str, count: int, delivery: DeliverySemantics) -> None:
    await store.create_stream(StreamConfig(name=stream, delivery=delivery))
    await store.append(stream, [EventData("E", {"n": n}) for n in range(count)])


async def consume_and_leave(store: EventStore, stream: str, count: int) -> None:
    """The group consumes and commits the first ``count`` events, then its member leaves."""
    reader = store.consumer_groups()
    options = FAST.model_copy(update={"commit_strategy": OffsetCommitStrategy.AFTER_EACH})
    async with reader.consume(stream, group_id="g", consumer_id="first", options=options) as events:
        async for event in events:
            if event.offset == count - 1:
                break


async def next_batch(batches: AsyncIterator[ConsumedBatch]) -> ConsumedBatch:
    return await asyncio.wait_for(anext(batches), 10)


async def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def seen(stream: str) -> float:
    value = default_metrics.registry.get_sample_value(
        "sluice_consumer_truncations_total", {"stream": stream, "group": "g"}
    )
    return value or 0.0


async def truncated_stream(store: EventStore, stream: str, delivery: DeliverySemantics) -> None:
    """100 events; group g committed 20; enforce-mode retention keeps the last 10."""
    await fill(store, stream, 100, delivery)
    await consume_and_leave(store, stream, 20)
    report = await prune_stream(store, stream, RetentionLimits(max_event_count=10, enforce=True))
    assert report.truncated_groups == ["g"]


@pytest.mark.parametrize("delivery", [DeliverySemantics.BROADCAST, DeliverySemantics.QUEUE])
async def test_earliest_goes_on_from_the_first_retained_event_and_says_what_was_lost(
    store: EventStore, delivery: DeliverySemantics
) -> None:
    await truncated_stream(store, "earliest", delivery)
    before = seen("earliest")
    consumption = store.consumer_groups().consume_batches("earliest", group_id="g", consumer_id="second", options=FAST)
    async with consumption:
        batches = aiter(consumption)
        batch = await next_batch(batches)
        assert batch.first_offset == 90
        assert [event.offset for event in batch] == list(range(90, 100))
        assert batch.truncation is not None
        assert (batch.truncation.expected_offset, batch.truncation.first_offset) == (20, 90)
        assert batch.truncation.lost_events == 70
        assert batch.truncation.policy is TruncationPolicy.EARLIEST
        assert consumption.truncations == [batch.truncation]
        assert consumption.stats.truncations == 1
    assert seen("earliest") == before + 1
    description = await store.consumer_groups().describe("earliest", "g")
    assert description.partitions[0].committed_offset == 100


async def test_latest_skips_to_the_head_and_the_next_batch_says_so(store: EventStore) -> None:
    await truncated_stream(store, "latest", DeliverySemantics.BROADCAST)
    options = FAST.model_copy(update={"on_truncation": TruncationPolicy.LATEST})
    consumption = store.consumer_groups().consume_batches("latest", group_id="g", consumer_id="second", options=options)
    async with consumption:
        batches = aiter(consumption)
        waiting = asyncio.create_task(next_batch(batches))
        await wait_until(lambda: bool(consumption.truncations))
        await store.append("latest", [EventData("E", {"n": n}) for n in range(100, 103)])
        batch = await waiting
        assert [event.offset for event in batch] == [100, 101, 102]
        assert batch.truncation is not None
        assert (batch.truncation.expected_offset, batch.truncation.resumed_at) == (20, 100)
        assert batch.truncation.skipped_events == 80


async def test_fail_raises_and_commits_nothing_past_the_gap(store: EventStore) -> None:
    await truncated_stream(store, "failing", DeliverySemantics.BROADCAST)
    options = FAST.model_copy(update={"on_truncation": TruncationPolicy.FAIL})
    events = store.consumer_groups().consume("failing", group_id="g", consumer_id="second", options=options)

    async def consume() -> None:
        async with events:
            async for _ in events:
                pytest.fail("no event may be delivered past the gap")

    with pytest.raises(ConsumerTruncatedError) as raised:
        await consume()
    assert (raised.value.expected_offset, raised.value.first_offset, raised.value.partition) == (20, 90, 0)
    assert raised.value.code == "consumer_truncated"
    description = await store.consumer_groups().describe("failing", "g")
    assert description.partitions[0].committed_offset == 20
