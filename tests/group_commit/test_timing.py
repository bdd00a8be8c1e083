"""When batches are written: linger, max_batch, close, and callers cancelled while they wait."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sluice import AppendResult, EventData, EventStore
from sluice.services.group_commit import AppendBatcher
from tests.group_commit.helpers import batch_sizes, eventually, private_metrics, read, sample


async def test_linger_holds_the_first_append_for_company(store: EventStore) -> None:
    async with AppendBatcher(store, linger=timedelta(milliseconds=400)) as batcher:
        started = time.monotonic()
        first = asyncio.create_task(batcher.append("lingering", EventData("E", {"n": 0})))
        await asyncio.sleep(0.15)
        assert not first.done()
        second = await batcher.append("lingering", EventData("E", {"n": 1}))
        waited = time.monotonic() - started
        assert (await first).first_offset + 1 == second.first_offset
    assert 0.35 <= waited < 5  # the first append waited (about) the linger time, the second joined it
    assert batch_sizes(await read(store, "lingering")) == [2]


async def test_a_full_batch_is_written_without_waiting_for_linger(store: EventStore) -> None:
    metrics = private_metrics()
    batcher = AppendBatcher(store, linger=timedelta(seconds=60), max_batch=10, metrics=metrics)
    try:
        tasks = [asyncio.create_task(batcher.append("full", EventData("E", {"n": n}))) for n in range(25)]
        await eventually(lambda: sum(task.done() for task in tasks) >= 20)
        await asyncio.sleep(0.2)
        assert sum(task.done() for task in tasks) == 20  # two full batches; the last five wait for linger
        assert batch_sizes(await read(store, "full")) == [10, 10]
    finally:
        await batcher.close()  # writes the last five now
    assert all(task.done() for task in tasks)
    assert sorted(task.result().first_offset for task in tasks) == list(range(25))
    assert batch_sizes(await read(store, "full")) == [10, 10, 5]
    assert sample(metrics, "sluice_group_commit_batch_size_count", "full") == 3


async def test_an_eager_batch_is_written_without_waiting_for_linger(store: EventStore) -> None:
    async with AppendBatcher(store, linger=timedelta(seconds=2), eager_events=5) as batcher:
        started = time.monotonic()
        await batcher.append("eager", [EventData("E", {"n": n}) for n in range(5)])
        eager = time.monotonic() - started
        lingering = asyncio.create_task(batcher.append("eager", [EventData("E", {"n": n}) for n in range(4)]))
        await asyncio.sleep(0.3)
        assert not lingering.done()  # four events wait for company
        joined = await batcher.append("eager", EventData("E", {"n": 4}))  # the fifth makes the batch eager
        assert joined.first_offset == (await lingering).first_offset + 4
    assert eager < 1.5, f"an append of eager_events waited {eager:.2f} s"
    assert batch_sizes(await read(store, "eager")) == [5, 5]


async def test_close_writes_everything_queued(store: EventStore) -> None:
    batcher = AppendBatcher(store, linger=timedelta(seconds=60))
    tasks = [
        asyncio.create_task(batcher.append(f"closing-{n % 3}", EventData("E", {"n": n}), partition_key=str(n)))
        for n in range(30)
    ]
    await asyncio.sleep(0.2)
    assert not any(task.done() for task in tasks)
    started = time.monotonic()
    await batcher.close()
    assert time.monotonic() - started < 10
    results = [task.result() for task in tasks]
    for stream in range(3):
        offsets = sorted(result.first_offset for n, result in enumerate(results) if n % 3 == stream)
        assert offsets == list(range(10))
        assert sorted(event.data["n"] for event in await read(store, f"closing-{stream}")) == list(range(stream, 30, 3))


async def test_cancelled_callers_lose_or_duplicate_nothing_of_the_others(store: EventStore) -> None:
    metrics = private_metrics()
    async with AppendBatcher(store, linger=timedelta(milliseconds=300), metrics=metrics) as batcher:
        tasks = [asyncio.create_task(batcher.append("cancelling", EventData("E", {"n": n}))) for n in range(10)]
        await asyncio.sleep(0.05)
        for task in tasks[::3]:
            task.cancel()  # while they wait in the lane: left out of the batch
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = {n for n, outcome in enumerate(outcomes) if isinstance(outcome, asyncio.CancelledError)}
        assert cancelled == {0, 3, 6, 9}

        # Cancelled once their batch is being written: the batch goes on, every other caller is answered.
        more = [asyncio.create_task(batcher.append("cancelling", EventData("E", {"n": n}))) for n in range(10, 40)]
        await eventually(
            lambda: sample(metrics, "sluice_group_commit_flushes_total", "cancelling") >= 2, interval=0.001
        )
        for task in more[::5]:
            task.cancel()
        late = await asyncio.gather(*more, return_exceptions=True)

    stored = await read(store, "cancelling")
    numbers = [event.data["n"] for event in stored]
    assert len(numbers) == len(set(numbers))  # nothing twice
    assert [event.offset for event in stored] == list(range(len(stored)))  # gap-free
    answered = {
        10 + index: outcome.first_offset for index, outcome in enumerate(late) if isinstance(outcome, AppendResult)
    }
    answered.update(
        {n: outcome.first_offset for n, outcome in enumerate(outcomes) if isinstance(outcome, AppendResult)}
    )
    by_offset = {event.offset: event.data["n"] for event in stored}
    assert all(by_offset[offset] == n for n, offset in answered.items())  # every answer is true
    assert set(answered) <= set(numbers)
    assert not cancelled & set(numbers)  # cancelled before their batch: not written
    assert set(numbers) - set(answered) <= {10 + index for index in range(0, 30, 5)}  # only cancelled ones extra
