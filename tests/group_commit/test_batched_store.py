"""``batched(store)``: appends batched, everything else the wrapped store's; metrics on /metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

import sluice
import sluice.services.group_commit.batcher as batcher_module
import sluice.store.event_store as store_module
from sluice import EventData, StoreClosedError
from sluice.observability.metrics import default_metrics
from sluice.services.group_commit import batched
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


async def test_each_event_is_encoded_once_on_the_batched_path(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batcher validates and encodes each caller's events when they arrive; the store takes the joined
    prepared batch as it is (it used to validate and encode every event a second time)."""
    encoded: list[int] = []
    real_prepare = batcher_module.prepare_batch

    def counting_prepare(events: Any, *arguments: Any, **keywords: Any) -> Any:
        prepared = real_prepare(events, *arguments, **keywords)
        encoded.append(len(prepared))
        return prepared

    monkeypatch.setattr(batcher_module, "prepare_batch", counting_prepare)
    monkeypatch.setattr(store_module, "prepare_batch", counting_prepare)
    store = batched(await sluice.connect(store_url), linger=timedelta(milliseconds=20), metrics=private_metrics())
    async with store:
        await asyncio.gather(*(store.append("once", [EventData("E", {"n": n}), EventData("E", {})]) for n in range(30)))
        stored = await read(store.unbatched, "once")
    assert len(stored) == 60
    assert len(batch_sizes(stored)) < 30, "callers shared transactions"
    assert sum(encoded) == 60, f"each of the 60 events encoded once, not {sum(encoded)} times"
