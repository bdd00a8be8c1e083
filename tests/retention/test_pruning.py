"""prune_stream on both backends: counts, bytes and offsets; every limit; respect and enforce modes;
windows; and what reads see afterwards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sluice import ConsumerGroupOptions, Direction, EventData, EventStore, OffsetCommitStrategy, StreamConfig
from sluice.core.errors import StreamNotFoundError, StreamTypeError
from sluice.observability.metrics import default_metrics
from sluice.services.retention import CleanupWindow, RetentionLimits, prune_stream


async def fill(store: EventStore, stream: str, count: int, *, partitions: int = 1, size: int = 10) -> None:
    """``count`` events per partition, each with a ``size``-byte opaque payload, in batches of 25."""
    await store.create_stream(StreamConfig(name=stream, partitions=partitions))
    for partition in range(partitions):
        for start in range(0, count, 25):
            batch = [EventData("E", bytes([n % 256]) * size) for n in range(start, min(start + 25, count))]
            await store.append(stream, batch, partition=partition)


async def offsets(store: EventStore, stream: str, partition: int = 0) -> list[int]:
    return [event.offset async for event in store.read_stream(stream, partition=partition)]


async def commit_group(store: EventStore, stream: str, group: str, count: int) -> None:
    """A group that consumed and committed the first ``count`` events of partition 0, then left."""
    reader = store.consumer_groups()
    options = ConsumerGroupOptions(commit_strategy=OffsetCommitStrategy.MANUAL, batch_size=count)
    async with reader.consume(stream, group_id=group, consumer_id="c", options=options) as events:
        async for event in events:
            if event.offset == count - 1:
                await event.commit()
                break


def truncation_count(stream: str, group: str) -> float:
    value = default_metrics.registry.get_sample_value(
        "sluice_retention_truncations_total", {"stream": stream, "group": group}
    )
    return value or 0.0


async def test_max_event_count_keeps_the_newest_per_partition_and_reports_it(store: EventStore) -> None:
    await fill(store, "counted", 100, partitions=2, size=7)
    report = await prune_stream(store, "counted", RetentionLimits(max_event_count=30), batch_size=9)
    assert report.pruned_events == 140
    assert report.pruned_bytes == 140 * 7
    assert report.oldest_retained_offsets == {0: 70, 1: 70}
    assert report.held_back_by == []
    assert await offsets(store, "counted", 1) == list(range(70, 100))
    info = await store.get_stream("counted")
    assert [(p.first_offset, p.head) for p in info.partition_heads] == [(70, 100), (70, 100)]
    again = await prune_stream(store, "counted", RetentionLimits(max_event_count=30))
    assert (again.pruned_events, again.oldest_retained_offsets) == (0, {0: 70, 1: 70})


async def test_reads_after_a_prune_start_at_the_first_retained_event(store: EventStore) -> None:
    await fill(store, "reads", 50)
    await prune_stream(store, "reads", RetentionLimits(max_event_count=20))
    assert await offsets(store, "reads") == list(range(30, 50))
    backwards = [event.offset async for event in store.read_stream("reads", direction=Direction.BACKWARDS)]
    assert backwards == list(range(49, 29, -1))
    assert [event.offset async for event in store.read_stream("reads", from_offset=10, limit=3)] == [30, 31, 32]
    everything = [event.offset async for event in store.read_all() if event.stream_name == "reads"]
    assert everything == list(range(30, 50))
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    assert [event.offset async for event in store.read_stream("reads", from_time=long_ago, limit=2)] == [30, 31]
    result = await store.append("reads", EventData("E", b"new"))
    assert result.offsets == (50,)  # offsets go on from the head, never reused


async def test_a_new_group_starting_at_the_earliest_event_starts_at_the_first_retained_one(store: EventStore) -> None:
    await fill(store, "joined", 50)
    await prune_stream(store, "joined", RetentionLimits(max_event_count=20))
    reader = store.consumer_groups()
    async with reader.consume("joined", group_id="late", consumer_id="c") as events:
        first = await anext(aiter(events))
    assert first.offset == 30
    description = await reader.describe("joined", "late")
    assert (description.partitions[0].committed_offset, description.partitions[0].head) == (31, 50)
    assert description.partitions[0].lag_events == 19


async def test_max_age_prunes_what_was_stored_before_now_minus_the_age(store: EventStore) -> None:
    await fill(store, "aged", 10)
    await asyncio.sleep(0.05)
    await store.append("aged", [EventData("E", b"late") for _ in range(5)])
    late = [event async for event in store.read_stream("aged", from_offset=10)]
    now = late[0].timestamp + timedelta(hours=1)
    report = await prune_stream(store, "aged", RetentionLimits(max_age=timedelta(hours=1)), now=now)
    assert report.pruned_events == 10
    assert report.oldest_retained_offsets == {0: 10}
    nothing = await prune_stream(store, "aged", RetentionLimits(max_age=timedelta(days=1)), now=now)
    assert nothing.pruned_events == 0


async def test_max_bytes_keeps_the_newest_bytes_of_the_whole_stream(store: EventStore) -> None:
    await fill(store, "sized", 10, partitions=2, size=100)  # partition 0 first, then partition 1: 2000 bytes
    report = await prune_stream(store, "sized", RetentionLimits(max_bytes=1250))
    # The newest 12 events fit (1200 bytes): all 10 of partition 1 and the last 2 of partition 0.
    assert report.pruned_events == 8
    assert report.pruned_bytes == 800
    assert report.oldest_retained_offsets == {0: 8, 1: 0}


async def test_respect_mode_never_deletes_past_an_active_groups_offset(store: EventStore) -> None:
    await fill(store, "respected", 100)
    await commit_group(store, "respected", "slow", 30)
    report = await prune_stream(store, "respected", RetentionLimits(max_event_count=10))
    assert report.pruned_events == 30
    assert report.oldest_retained_offsets == {0: 30}
    assert report.held_back_by == ["slow"]
    assert report.truncated_groups == []
    assert (await offsets(store, "respected"))[0] == 30


async def test_a_group_idle_past_the_horizon_no_longer_holds_events_back(store: EventStore) -> None:
    await fill(store, "idle", 100)
    await commit_group(store, "idle", "abandoned", 30)
    before = truncation_count("idle", "abandoned")
    later = datetime.now(UTC) + timedelta(days=8)
    report = await prune_stream(store, "idle", RetentionLimits(max_event_count=10), now=later)
    assert report.pruned_events == 90
    assert report.held_back_by == []
    assert report.truncated_groups == ["abandoned"]
    assert truncation_count("idle", "abandoned") == before + 1


async def test_enforce_mode_deletes_past_a_group_and_counts_the_truncation(store: EventStore) -> None:
    await fill(store, "enforced", 100)
    await commit_group(store, "enforced", "slow", 30)
    before = truncation_count("enforced", "slow")
    report = await prune_stream(store, "enforced", RetentionLimits(max_event_count=10, enforce=True))
    assert report.pruned_events == 90
    assert report.oldest_retained_offsets == {0: 90}
    assert report.held_back_by == []
    assert report.truncated_groups == ["slow"]
    assert truncation_count("enforced", "slow") == before + 1
    explicit = await prune_stream(store, "enforced", RetentionLimits(max_event_count=5), respect_consumers=False)
    assert explicit.pruned_events == 5


async def test_the_cleanup_window_is_honoured_unless_ignored(store: EventStore) -> None:
    await fill(store, "windowed", 20)
    limits = RetentionLimits(max_event_count=5, cleanup_window=CleanupWindow.parse("23:00-01:00"))
    outside = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    skipped = await prune_stream(store, "windowed", limits, now=outside)
    assert skipped.pruned_events == 0
    assert skipped.skipped_reason is not None
    assert "23:00-01:00" in skipped.skipped_reason
    assert (await offsets(store, "windowed"))[0] == 0
    inside = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
    assert (await prune_stream(store, "windowed", limits, now=inside)).pruned_events == 15
    assert (
        await prune_stream(
            store, "windowed", limits.model_copy(update={"max_event_count": 2}), now=outside, ignore_window=True
        )
    ).pruned_events == 3


async def test_pruning_a_queue_or_a_missing_stream_is_refused(store: EventStore) -> None:
    await store.enqueue("jobs", EventData("Job", {"n": 1}))
    with pytest.raises(StreamTypeError):
        await prune_stream(store, "jobs", RetentionLimits(max_event_count=1))
    with pytest.raises(StreamNotFoundError):
        await prune_stream(store, "missing", RetentionLimits(max_event_count=1))
