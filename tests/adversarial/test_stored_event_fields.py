"""What the library stores must be readable through every door and bounded: a schema version of 0 or -1
used to be stored (every gRPC Read or Subscribe of its partition then failed with INTERNAL: the wire
field is unsigned), and metadata had no size limit at all (50 MB of it was stored)."""

from __future__ import annotations

import pytest

from sluice import EventData, EventStore, InvalidArgumentError, StreamConfig, StreamNotFoundError, StreamType

TOO_MUCH = "m" * (1024 * 1024 + 1)
TOO_MANY_BYTES = "\u00e9" * (1024 * 1024 // 2 + 1)
"""Fewer characters than the 1 MiB limit, more bytes (two per character in UTF-8): the size check read
characters and let 2 MiB of such metadata through."""


@pytest.mark.parametrize("version", [0, -1, 2**31], ids=["0", "-1", "2^31"])
async def test_schema_version_out_of_range_is_refused(store: EventStore, version: int) -> None:
    with pytest.raises(InvalidArgumentError):
        await store.append("orders", EventData("Placed", {}, schema_version=version))
    with pytest.raises(StreamNotFoundError):
        await store.get_stream("orders")


@pytest.mark.parametrize("note", [TOO_MUCH, TOO_MANY_BYTES], ids=["ascii", "two-byte-characters"])
async def test_metadata_over_the_payload_limit_is_refused(store: EventStore, note: str) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    with pytest.raises(InvalidArgumentError, match=r"metadata is \d+ bytes, over the limit"):
        await store.append("orders", EventData("Placed", {}, metadata={"note": note}))
    with pytest.raises(InvalidArgumentError, match=r"metadata is \d+ bytes, over the limit"):
        await store.enqueue("jobs", EventData("Job", {}, metadata={"note": note}))
    assert [info.name for info in await store.list_streams()] == ["jobs"]
    assert (await store.queue_depth("jobs")).waiting == 0
