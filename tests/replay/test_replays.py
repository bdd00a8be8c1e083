"""Replays through the library, on both backends: into a stream (exactly once, in order, with source
metadata), a handler (resumed after a failure), a consumer group (reset with fencing), from a time,
rate limited, cancelled, and refused when the input is bad."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from sluice import ConsumerGroupOptions, EventData, EventStore, OffsetCommitStrategy, StreamConfig
from sluice.core.errors import (
    FencedError,
    InvalidArgumentError,
    InvalidNameError,
    ProjectionNotFoundError,
    ReplayConflictError,
    ReplayFailedError,
    ReplayNotFoundError,
    ReplayTargetUnavailableError,
)
from sluice.core.events import RecordedEvent
from sluice.services.replay import (
    REPLAYED_FROM_KEY,
    PartitionProgress,
    ReplayProgress,
    ReplayRequest,
    Replays,
    ReplayState,
    ReplayTargetKind,
    replayed_event_id,
)
from sluice.services.replay.record_stores import replay_records
from sluice.store.contracts.replays import ReplayRecords


async def fill(store: EventStore, stream: str, count: int, *, partitions: int = 1, first: int = 0) -> None:
    await store.create_stream(StreamConfig(name=stream, partitions=partitions))
    for partition in range(partitions):
        events = [EventData("Numbered", {"n": number, "partition": partition}) for number in range(first, count)]
        await store.append(stream, events, partition=partition)


async def read_all(store: EventStore, stream: str, partition: int = 0) -> list[RecordedEvent]:
    return [event async for event in store.read_stream(stream, partition=partition)]


async def wait_until_reset(store: EventStore, name: str) -> ReplayProgress:
    """Wait for a consumer-group replay running in another task to have reset its group."""
    for _ in range(200):
        try:
            progress = await Replays(store).progress(name)
        except ReplayNotFoundError:
            progress = None
        if progress is not None and progress.target_prepared:
            return progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"replay {name!r} never reset its group")


def stream_request(name: str, **changes: object) -> ReplayRequest:
    fields: dict[str, object] = {
        "name": name,
        "stream": "orders",
        "from_offset": 0,
        "target": ReplayTargetKind.STREAM,
        "target_name": "orders-copy",
        "batch_size": 7,
    }
    fields.update(changes)
    return ReplayRequest(**fields)  # type: ignore[arg-type]


async def test_replay_to_a_stream_copies_each_event_once_in_order_with_its_source(store: EventStore) -> None:
    await fill(store, "orders", 30, partitions=2)
    replays = Replays(store)
    progress = await replays.start(stream_request("copy", from_offset=5))

    assert progress.state is ReplayState.SUCCEEDED
    assert (progress.events_done, progress.events_total, progress.percent) == (50, 50, 100)
    for partition in (0, 1):
        source = await read_all(store, "orders", partition)
        copied = await read_all(store, "orders-copy", partition)
        assert [event.data for event in copied] == [event.data for event in source[5:]]
        assert [event.event_id for event in copied] == [replayed_event_id("copy", e.event_id) for e in source[5:]]
        origin = copied[0].metadata[REPLAYED_FROM_KEY]
        assert origin == {
            "replay": "copy",
            "stream": "orders",
            "partition": partition,
            "offset": 5,
            "event_id": str(source[5].event_id),
        }
    recorded = await replays.progress("copy")
    assert recorded.state is ReplayState.SUCCEEDED
    assert [(p.start_offset, p.next_offset, p.end_offset) for p in recorded.partitions] == [(5, 30, 30)] * 2
    assert recorded.finished_at is not None
    assert recorded.eta is None

    # Starting a succeeded replay again does nothing.
    again = await replays.start(stream_request("copy", from_offset=5))
    assert again.state is ReplayState.SUCCEEDED
    assert len(await read_all(store, "orders-copy", 0)) == 25


class CrashingRecords(ReplayRecords):
    """The store's replay records, except that recording progress fails once, after ``good`` records:
    as if the process died between delivering a batch and recording it."""

    def __init__(self, inner: ReplayRecords, *, good: int) -> None:
        self._inner = inner
        self._good = good

    async def get(self, name: str) -> ReplayProgress | None:
        return await self._inner.get(name)

    async def list(self) -> list[ReplayProgress]:
        return await self._inner.list()

    async def create(self, request: ReplayRequest, partitions: Sequence[PartitionProgress]) -> bool:
        return await self._inner.create(request, partitions)

    async def begin_run(self, request: ReplayRequest) -> ReplayProgress:
        return await self._inner.begin_run(request)

    async def advance(self, name: str, epoch: int, positions: dict[int, int], events_per_second: float | None) -> bool:
        if self._good == 0:
            self._good = -1
            raise ConnectionError("the process died here")
        self._good -= 1
        return await self._inner.advance(name, epoch, positions, events_per_second)

    async def mark_target_prepared(self, name: str, epoch: int) -> None:
        await self._inner.mark_target_prepared(name, epoch)

    async def finish(self, name: str, epoch: int, state: ReplayState, error: str | None) -> None:
        await self._inner.finish(name, epoch, state, error)

    async def request_cancel(self, name: str) -> ReplayProgress:
        return await self._inner.request_cancel(name)


async def test_a_batch_delivered_but_not_recorded_is_not_duplicated_in_the_target(store: EventStore) -> None:
    await fill(store, "orders", 40)
    crashing = Replays(store, records=CrashingRecords(replay_records(store), good=2))
    with pytest.raises(ReplayFailedError, match="the process died here"):
        await crashing.start(stream_request("crash", batch_size=10))
    recorded = await Replays(store).progress("crash")
    assert recorded.events_done == 20
    assert len(await read_all(store, "orders-copy")) == 30  # the third batch was appended, not recorded

    # Resumed with other batch boundaries: the batch that straddles appended and new events is retried
    # event by event, and every event ends up in the target once.
    finished = await Replays(store).start(stream_request("crash", batch_size=15))
    assert (finished.state, finished.events_done) == (ReplayState.SUCCEEDED, 40)
    copied = await read_all(store, "orders-copy")
    assert [event.data["n"] for event in copied] == list(range(40))
    assert [event.offset for event in copied] == list(range(40))


async def test_total_is_fixed_at_the_start_and_partitions_can_be_chosen(store: EventStore) -> None:
    await fill(store, "orders", 10, partitions=3)
    appended_meanwhile = False

    async def handler(events: Sequence[RecordedEvent]) -> None:
        nonlocal appended_meanwhile
        if not appended_meanwhile:
            appended_meanwhile = True
            await store.append("orders", EventData("Late", {}), partition=2)

    request = ReplayRequest(
        name="some", stream="orders", partitions=(2, 0), from_offset=0, target=ReplayTargetKind.HANDLER, batch_size=4
    )
    progress = await Replays(store).start(request, handler=handler)
    assert [partition.partition for partition in progress.partitions] == [0, 2]
    assert (progress.events_done, progress.events_total) == (20, 20)


async def test_a_failed_replay_resumes_from_its_recorded_position(store: EventStore) -> None:
    await fill(store, "orders", 20)
    seen: list[int] = []

    async def failing(events: Sequence[RecordedEvent]) -> None:
        if events[0].offset >= 10:
            raise RuntimeError("the handler broke")
        seen.extend(event.offset for event in events)

    request = ReplayRequest(
        name="resumable", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, batch_size=5
    )
    replays = Replays(store)
    with pytest.raises(ReplayFailedError, match="the handler broke"):
        await replays.start(request, handler=failing)
    failed = await replays.progress("resumable")
    assert (failed.state, failed.events_done, failed.events_total) == (ReplayState.FAILED, 10, 20)
    assert failed.error is not None
    assert "the handler broke" in failed.error

    async def working(events: Sequence[RecordedEvent]) -> None:
        seen.extend(event.offset for event in events)

    done = await replays.resume("resumable", handler=working, batch_size=3)
    assert done.state is ReplayState.SUCCEEDED
    assert seen == list(range(20))
    assert done.request.batch_size == 3
    assert done.run_epoch == 2


async def test_from_time_starts_at_the_first_event_stored_at_or_after_it(store: EventStore) -> None:
    await fill(store, "orders", 5)
    await asyncio.sleep(0.05)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await store.append("orders", [EventData("Numbered", {"n": number}) for number in range(5, 9)])
    request = stream_request("since", from_offset=None, from_time=cutoff)
    progress = await Replays(store).start(request)
    assert progress.events_total == 4
    assert [event.data["n"] for event in await read_all(store, "orders-copy")] == [5, 6, 7, 8]


async def test_rate_limit_holds_the_replay_to_its_rate(store: EventStore) -> None:
    await fill(store, "orders", 150)
    batches: list[tuple[float, int]] = []

    async def handler(events: Sequence[RecordedEvent]) -> None:
        batches.append((time.monotonic(), len(events)))

    observed: list[ReplayProgress] = []
    request = ReplayRequest(
        name="slow", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, rate_limit=50, batch_size=10
    )
    started = time.monotonic()
    progress = await Replays(store).start(request, handler=handler, on_progress=observed.append)
    elapsed = time.monotonic() - started
    assert progress.state is ReplayState.SUCCEEDED
    assert [size for _, size in batches] == [10] * 15
    # The bucket starts full (one second's worth: 50 events, the first five batches at once); the other
    # 100 events follow at 50/s, so the whole replay takes about 2 s.
    assert 1.8 <= elapsed <= 5.0, elapsed
    burst_end = batches[4][0]
    after_burst = sum(size for _, size in batches[5:]) / (batches[-1][0] - burst_end)
    assert 33 <= after_burst <= 55, after_burst
    running = [item for item in observed if item.state is ReplayState.RUNNING and item.events_done < 150]
    assert running
    assert all(item.events_per_second is not None for item in running)
    assert all(item.eta is not None for item in running)


async def test_cancel_is_observed_between_batches(store: EventStore) -> None:
    await fill(store, "orders", 40)
    other_process = Replays(store)
    delivered: list[int] = []

    async def handler(events: Sequence[RecordedEvent]) -> None:
        delivered.extend(event.offset for event in events)
        if len(delivered) == 10:
            await other_process.cancel("stoppable")  # recorded only: observed at the next record

    request = ReplayRequest(
        name="stoppable", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, batch_size=5
    )
    progress = await Replays(store).start(request, handler=handler)
    assert progress.state is ReplayState.CANCELLED
    assert delivered == list(range(10))
    recorded = await other_process.progress("stoppable")
    assert (recorded.state, recorded.events_done, recorded.cancel_requested) == (ReplayState.CANCELLED, 10, True)
    # A cancelled replay is finished: starting it again delivers nothing.
    assert (await Replays(store).start(request, handler=handler)).state is ReplayState.CANCELLED
    assert delivered == list(range(10))


async def test_cancel_stops_a_replay_running_in_this_process_at_once(store: EventStore) -> None:
    await fill(store, "orders", 100)
    replays = Replays(store)
    first_batch = asyncio.Event()

    async def handler(events: Sequence[RecordedEvent]) -> None:
        first_batch.set()

    request = ReplayRequest(
        name="waiting", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, rate_limit=2, batch_size=1
    )
    running = asyncio.create_task(replays.start(request, handler=handler))
    await first_batch.wait()
    started = time.monotonic()
    await replays.cancel("waiting")
    progress = await running
    assert time.monotonic() - started < 0.4  # not waiting for the rate limit's next token
    assert progress.state is ReplayState.CANCELLED
    assert (await replays.progress("waiting")).state is ReplayState.CANCELLED


async def test_task_cancellation_leaves_the_replay_resumable(store: EventStore) -> None:
    await fill(store, "orders", 30)
    recorded = asyncio.Event()

    async def handler(events: Sequence[RecordedEvent]) -> None:
        pass

    def on_progress(progress: ReplayProgress) -> None:
        if progress.events_done:
            recorded.set()

    request = ReplayRequest(
        name="interrupted", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER, rate_limit=5, batch_size=5
    )
    replays = Replays(store)
    running = asyncio.create_task(replays.start(request, handler=handler, on_progress=on_progress))
    await recorded.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    paused = await replays.progress("interrupted")
    assert (paused.state, paused.error) == (ReplayState.PENDING, "interrupted")
    assert 0 < paused.events_done < 30
    faster = await replays.resume("interrupted", handler=handler, rate_limit=10_000)
    assert (faster.state, faster.events_done) == (ReplayState.SUCCEEDED, 30)


async def test_replay_to_a_consumer_group_resets_it_with_fencing(store: EventStore) -> None:
    await fill(store, "orders", 6)
    reader = store.consumer_groups()
    options = ConsumerGroupOptions(commit_strategy=OffsetCommitStrategy.AFTER_EACH, batch_size=10)
    async with reader.consume("orders", group_id="email", consumer_id="old", options=options) as consumption:
        async for event in consumption:
            if event.offset == 5:
                break
    assert (await reader.describe("orders", "email")).partitions[0].committed_offset == 6

    replays = Replays(store, group_poll_seconds=0.05)
    request = ReplayRequest(
        name="again", stream="orders", from_offset=2, target=ReplayTargetKind.CONSUMER_GROUP, target_name="email"
    )
    replaying = asyncio.create_task(replays.start(request))
    progress = await wait_until_reset(store, "again")
    assert (progress.events_done, progress.events_total) == (0, 4)
    assert (await reader.describe("orders", "email")).partitions[0].committed_offset == 2

    reread: list[int] = []
    async with reader.consume("orders", group_id="email", consumer_id="new", options=options) as consumption:
        async for event in consumption:
            reread.append(event.offset)
            if event.offset == 5:
                break
    assert reread == [2, 3, 4, 5]
    finished = await asyncio.wait_for(replaying, 10)
    assert (finished.state, finished.events_done, finished.percent) == (ReplayState.SUCCEEDED, 4, 100)


async def test_a_member_holding_old_positions_cannot_commit_over_the_reset(store: EventStore) -> None:
    await fill(store, "orders", 6)
    reader = store.consumer_groups()
    options = ConsumerGroupOptions(commit_strategy=OffsetCommitStrategy.MANUAL, batch_size=10)
    consumption = reader.consume("orders", group_id="email", consumer_id="holder", options=options)
    async with consumption:
        held = None
        async for event in consumption:
            if event.offset == 3:
                held = event
                break
        assert held is not None
        request = ReplayRequest(
            name="fence", stream="orders", from_offset=0, target=ReplayTargetKind.CONSUMER_GROUP, target_name="email"
        )
        replaying = asyncio.create_task(Replays(store, group_poll_seconds=0.05).start(request))
        await wait_until_reset(store, "fence")
        with pytest.raises(FencedError):
            await held.commit()  # delivered under the epoch before the reset
        assert (await reader.describe("orders", "email")).partitions[0].committed_offset == 0
        await Replays(store).cancel("fence")
        assert (await asyncio.wait_for(replaying, 10)).state is ReplayState.CANCELLED


async def test_bad_requests_are_refused_before_anything_is_recorded(store: EventStore) -> None:
    await fill(store, "orders", 3)
    replays = Replays(store)
    with pytest.raises(InvalidArgumentError, match="exactly one of from_offset or from_time"):
        stream_request("both", from_time=datetime.now(UTC))
    with pytest.raises(InvalidNameError):
        stream_request("not a name")
    operator_style = "default." + "r" * 253 + ".1f3a9c2e"  # namespace, object name, uid prefix
    assert stream_request(operator_style).name == operator_style
    with pytest.raises(InvalidNameError):
        stream_request("r" * 331)
    with pytest.raises(InvalidArgumentError, match="timezone"):
        stream_request("naive", from_offset=None, from_time=datetime(2026, 1, 1))
    with pytest.raises(InvalidArgumentError, match="target_name"):
        ReplayRequest(name="x", stream="orders", from_offset=0, target=ReplayTargetKind.STREAM)
    with pytest.raises(ProjectionNotFoundError):  # it never ran: there is nothing to rebuild
        await replays.start(stream_request("projected", target=ReplayTargetKind.PROJECTION, target_name="totals"))
    with pytest.raises(InvalidArgumentError, match="rebuilt from the start"):
        await replays.start(
            stream_request("projected", target=ReplayTargetKind.PROJECTION, target_name="totals", from_offset=2)
        )
    with pytest.raises(ReplayTargetUnavailableError, match="source stream"):
        await replays.start(stream_request("loop", target_name="orders"))
    with pytest.raises(InvalidArgumentError, match="partition"):
        await replays.start(stream_request("missing-partition", partitions=(4,)))
    with pytest.raises(InvalidArgumentError, match="handler"):
        await replays.start(stream_request("no-handler", target=ReplayTargetKind.HANDLER, target_name=None))
    assert await replays.list() == []
    with pytest.raises(ReplayNotFoundError):
        await replays.progress("projected")
    with pytest.raises(ReplayNotFoundError):
        await replays.cancel("projected")


async def test_a_name_taken_by_another_definition_is_a_conflict(store: EventStore) -> None:
    await fill(store, "orders", 3)
    replays = Replays(store)
    await replays.start(stream_request("taken"))
    with pytest.raises(ReplayConflictError, match="another definition"):
        await replays.start(stream_request("taken", from_offset=1))
    assert [progress.name for progress in await replays.list()] == ["taken"]


async def test_two_runs_of_one_replay_never_duplicate_in_the_target(store: EventStore) -> None:
    await fill(store, "orders", 60)
    request = stream_request("twice", batch_size=5, rate_limit=50)
    first = asyncio.create_task(Replays(store).start(request))
    for _ in range(200):
        try:
            if (await Replays(store).progress("twice")).events_done >= 10:
                break
        except ReplayNotFoundError:
            pass
        await asyncio.sleep(0.02)
    second = await Replays(store).start(request)  # takes over: the first run is fenced
    with pytest.raises(ReplayConflictError, match="taken over"):
        await first
    assert (second.state, second.events_done, second.run_epoch) == (ReplayState.SUCCEEDED, 60, 2)
    copied = await read_all(store, "orders-copy")
    assert [event.data["n"] for event in copied] == list(range(60))
