"""What the library stores must be readable through every door and bounded: a schema version of 0 or -1
used to be stored (every gRPC Read or Subscribe of its partition then failed with INTERNAL: the wire
field is unsigned), and metadata had no size limit at all (50 MB of it was stored)."""

from __future__ import annotations

import pytest

from sluice import EventData, EventStore, InvalidArgumentError, StreamConfig, StreamNotFoundError, StreamType

TOO_MUCH = "m" * (1024 * 1024 + 1)


@pytest.mark.parametrize("version", [0, -1, 2**31], ids=["0", "-1", "2^31"])
async def test_schema_version_out_of_range_is_refused(store: EventStore, version: int) -> None:
    with pytest.raises(InvalidArgumentError):
        await store.append("orders", EventData("Placed", {}, schema_version=version))
    with pytest.raises(StreamNotFoundError):
        await store.get_stream("orders")


async def test_metadata_over_the_payload_limit_is_refused(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    with pytest.raises(InvalidArgumentError):
        await store.append("orders", EventData("Placed", {}, metadata={"note": TOO_MUCH}))
    with pytest.raises(InvalidArgumentError):
        await store.enqueue("jobs", EventData("Job", {}, metadata={"note": TOO_MUCH}))
    assert [info.name for info in await store.list_streams()] == ["jobs"]
    assert (await store.queue_depth("jobs")).waiting == 0
