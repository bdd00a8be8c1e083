"""Library inputs of the right Python type that used to escape as untyped errors, on both backends: a
partition key holding a lone surrogate (UnicodeEncodeError, after the stream was auto-created on
PostgreSQL) and a naive ``from_time`` (TypeError on the memory backend; PostgreSQL reads it as UTC)."""

from __future__ import annotations

from datetime import datetime

import pytest

from sluice import EventData, EventStore, InvalidArgumentError, StreamNotFoundError


async def test_partition_key_that_is_not_unicode_text_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidArgumentError):
        await store.append("orders", EventData("Placed", {}), partition_key="\udcff")
    with pytest.raises(StreamNotFoundError):
        await store.get_stream("orders")  # nothing was created either


async def test_naive_from_time_is_read_as_utc(store: EventStore) -> None:
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(3)])
    early = [event.offset async for event in store.read_stream("orders", from_time=datetime(2000, 1, 1))]
    late = [event.offset async for event in store.read_stream("orders", from_time=datetime(9000, 1, 1))]
    assert (early, late) == ([0, 1, 2], [])
