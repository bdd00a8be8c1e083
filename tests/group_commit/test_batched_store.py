"""``batched(store)``: appends batched, everything else the wrapped store's; metrics on /metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import sluice
from sluice import EventData, StoreClosedError
from sluice.group_commit import batched
from sluice.observability.metrics import default_metrics
from tests.group_commit.helpers import batch_sizes, private_metrics, read, sample


async def test_batched_store_batches_appends_and_delegates_the_rest(store_url: str) -> None:
    metrics = private_metrics()
    store = batched(await sluice.connect(store_url), linger=timedelta(milliseconds=20), metrics=metrics)
    async with store:
        results = await asyncio.gather(*(store.append("wrapped", EventData("E", {"n": n})) for n in range(50)))
        assert sorted(result.first_offset for result in results) == list(range(50))
        stored = await read(store.unbatched, "wrapped")
        assert len(batch_sizes(stored)) < 10
        info = await store.get_stream("wrapped")  # delegated to the wrapped store
        assert info.partition_heads[0].head == 50
        assert sample(metrics, "sluice_group_commit_batch_size_sum", "wrapped") == 50
    with pytest.raises(StoreClosedError):  # closing the wrapper closed the store too
        await store.unbatched.get_stream("wrapped")


async def test_default_metrics_are_served_with_the_runtimes(store_url: str) -> None:
    async with batched(await sluice.connect(store_url)) as store:
        await store.append("served", EventData("E", {}))
    text = default_metrics.render().decode()
    assert 'sluice_group_commit_flushes_total{stream="served"}' in text
    assert 'sluice_group_commit_batch_size_count{stream="served"}' in text
