"""Each caller gets its own errors: bad input fails on entry, a batch that fails because of one
event is split so that only its caller fails, and a stream-level error reaches every caller."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

import sluice
from sluice import (
    AppendResult,
    DuplicateEventIdError,
    EventData,
    EventStore,
    InvalidArgumentError,
    PayloadTooLargeError,
    StoreClosedError,
    StreamConfig,
    StreamNotFoundError,
    StreamType,
    StreamTypeError,
)
from sluice.core.errors import PermissionDeniedError, StreamArchivedError, UnauthenticatedError
from sluice.security.authorized_store import authorized_store
from sluice.security.caller_scope import caller_context, caller_scoped_store
from sluice.security.policy import AccessPolicy, Grant
from sluice.services.group_commit import AppendBatcher, batched
from tests.group_commit.helpers import batch_sizes, private_metrics, read, sample

LINGER = timedelta(milliseconds=50)


async def test_bad_input_fails_only_its_caller_on_entry(store_url: str) -> None:
    store = await sluice.connect(store_url, max_payload_bytes=100)
    try:
        async with AppendBatcher(store, linger=LINGER) as batcher:
            outcomes = await asyncio.gather(
                batcher.append("mixed", EventData("E", {"n": 0})),
                batcher.append("mixed", EventData("E", {"text": "x" * 200})),
                batcher.append("mixed", 42),
                batcher.append("mixed", EventData("", {"n": 3})),
                batcher.append("mixed", []),
                batcher.append("no spaces allowed", EventData("E", {"n": 5})),
                batcher.append("mixed", EventData("E", {"n": 6}), partition=-1),
                batcher.append("mixed", EventData("E", {"n": 7}), partition_key=7),  # type: ignore[arg-type]
                batcher.append("mixed", EventData("E", {"n": 8})),
                return_exceptions=True,
            )
        assert isinstance(outcomes[1], PayloadTooLargeError)
        assert all(isinstance(outcome, InvalidArgumentError) for outcome in outcomes[1:8])
        first, last = outcomes[0], outcomes[8]
        assert isinstance(first, AppendResult)
        assert isinstance(last, AppendResult)
        stored = {event.offset: event.data["n"] for event in await read(store, "mixed")}
        assert stored == {first.first_offset: 0, last.first_offset: 8}
    finally:
        await store.close()


async def test_a_duplicate_id_in_a_shared_batch_fails_only_its_caller(store: EventStore) -> None:
    stored_id = uuid.uuid4()
    original = await store.append("orders", EventData("E", {"n": -1}, event_id=stored_id))
    metrics = private_metrics()
    resent = EventData("E", {"n": -1}, event_id=stored_id)
    async with AppendBatcher(store, linger=LINGER, metrics=metrics) as batcher:
        outcomes = await asyncio.gather(
            *(batcher.append("orders", EventData("E", {"n": n})) for n in range(5)),
            # mixes a stored id with a new one: DuplicateEventIdError, as store.append would say
            batcher.append("orders", [resent, EventData("E", {"n": 99})]),
            *(batcher.append("orders", EventData("E", {"n": n})) for n in range(5, 10)),
            batcher.append("orders", resent),  # a plain retry: the original offset, deduplicated
            return_exceptions=True,
        )
    assert isinstance(outcomes[5], DuplicateEventIdError)
    retry = outcomes[11]
    assert isinstance(retry, AppendResult)
    assert retry.deduplicated
    assert retry.offsets == original.offsets
    fresh = [outcome for index, outcome in enumerate(outcomes) if index not in (5, 11)]
    assert all(isinstance(outcome, AppendResult) and not outcome.deduplicated for outcome in fresh)
    assert sorted(outcome.first_offset for outcome in fresh) == list(range(1, 11))  # type: ignore[union-attr]
    stored = await read(store, "orders")
    assert sorted(event.data["n"] for event in stored) == list(range(-1, 10))  # no 99, nothing twice
    assert sample(metrics, "sluice_group_commit_splits_total", "orders") >= 1


async def test_two_callers_with_the_same_event_id_get_one_event(store: EventStore) -> None:
    event = EventData("E", {"n": 1})
    async with AppendBatcher(store, linger=LINGER) as batcher:
        first, second, other = await asyncio.gather(
            batcher.append("twice", event), batcher.append("twice", event), batcher.append("twice", EventData("E", {}))
        )
    assert first.offsets == second.offsets
    assert [first.deduplicated, second.deduplicated].count(True) == 1
    assert sorted([first.first_offset, other.first_offset]) == [0, 1]
    assert len(await read(store, "twice")) == 2


async def test_a_stream_level_error_reaches_every_caller_of_the_batch(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="frozen"))
    metrics = private_metrics()
    async with AppendBatcher(store, linger=LINGER, metrics=metrics) as batcher:
        await batcher.append("frozen", EventData("E", {}))  # the partition count is cached now
        await store.archive_stream("frozen")
        outcomes = await asyncio.gather(
            *(batcher.append("frozen", EventData("E", {"n": n})) for n in range(6)), return_exceptions=True
        )
    assert all(isinstance(outcome, StreamArchivedError) for outcome in outcomes)
    assert sample(metrics, "sluice_group_commit_flushes_total", "frozen") == 2  # one try, no splitting
    assert sample(metrics, "sluice_group_commit_splits_total", "frozen") == 0
    assert len(await read(store, "frozen")) == 1


async def test_a_queue_is_refused_before_anything_is_queued(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="work", type=StreamType.EPHEMERAL))
    metrics = private_metrics()
    async with AppendBatcher(store, linger=LINGER, metrics=metrics) as batcher:
        outcomes = await asyncio.gather(
            batcher.append("work", EventData("E", {})),
            batcher.append("work", EventData("E", {}), partition_key="k"),
            batcher.append("work", EventData("E", {}), partition=0),
            return_exceptions=True,
        )
    assert all(isinstance(outcome, StreamTypeError) for outcome in outcomes)
    assert sample(metrics, "sluice_group_commit_flushes_total", "work") == 0


async def test_missing_streams_without_auto_create(store_url: str) -> None:
    store = await sluice.connect(store_url, auto_create_streams=False)
    try:
        async with AppendBatcher(store, linger=LINGER) as batcher:
            outcomes = await asyncio.gather(
                batcher.append("absent", EventData("E", {})),
                batcher.append("absent", EventData("E", {})),
                batcher.append("absent", EventData("E", {}), partition_key="k"),
                return_exceptions=True,
            )
        assert all(isinstance(outcome, StreamNotFoundError) for outcome in outcomes)
    finally:
        await store.close()


async def test_a_partition_that_does_not_exist_fails_only_its_caller(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="two", partitions=2))
    async with AppendBatcher(store, linger=LINGER) as batcher:
        outcomes = await asyncio.gather(
            batcher.append("two", EventData("E", {}), partition=1),
            batcher.append("two", EventData("E", {}), partition=2),
            batcher.append("two", EventData("E", {}), partition=1),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], InvalidArgumentError)
        assert sorted(outcome.first_offset for outcome in (outcomes[0], outcomes[2])) == [0, 1]  # type: ignore[union-attr]
        await store.set_partitions("two", 3)
        grown = await batcher.append("two", EventData("E", {}), partition=2)  # the count is looked up again
    assert grown.partitions == (2,)


@pytest.mark.postgres
async def test_an_event_the_database_refuses_fails_only_its_caller(postgres_dsn: str) -> None:
    # PostgreSQL's jsonb refuses \u0000 in metadata; nothing checks it before the database does, so
    # the shared batch fails and is split until the guilty caller is alone.
    store = await sluice.connect(postgres_dsn)
    try:
        async with AppendBatcher(store, linger=LINGER) as batcher:
            outcomes = await asyncio.gather(
                *(batcher.append("refused", EventData("E", {"n": n})) for n in range(4)),
                batcher.append("refused", EventData("E", {"n": 4}, metadata={"note": "a\u0000b"})),
                *(batcher.append("refused", EventData("E", {"n": n})) for n in range(5, 9)),
                return_exceptions=True,
            )
        assert isinstance(outcomes[4], Exception)  # the driver's error, as store.append raises it
        good = outcomes[:4] + outcomes[5:]
        assert all(isinstance(outcome, AppendResult) for outcome in good)
        assert sorted(outcome.first_offset for outcome in good) == list(range(8))  # type: ignore[union-attr]
        assert sorted(event.data["n"] for event in await read(store, "refused")) == [0, 1, 2, 3, 5, 6, 7, 8]
    finally:
        await store.close()


async def test_invalid_settings_and_use_after_close(store: EventStore) -> None:
    with pytest.raises(InvalidArgumentError):
        AppendBatcher(store, linger=timedelta(milliseconds=-1))
    with pytest.raises(InvalidArgumentError):
        AppendBatcher(store, max_batch=0)
    with pytest.raises(InvalidArgumentError):
        AppendBatcher(store, max_batch=10_001)
    for eager_events in (0, -5, True, 2.5):
        with pytest.raises(InvalidArgumentError, match="eager_events must be a positive number of events"):
            AppendBatcher(store, eager_events=eager_events)  # type: ignore[arg-type]
    assert batched(store, eager_events=7).batcher.eager_events == 7
    batcher = AppendBatcher(store)
    await batcher.close()
    await batcher.close()
    with pytest.raises(StoreClosedError):
        await batcher.append("late", EventData("E", {}))
    assert [stream.name for stream in await store.list_streams()] == []


async def test_keyed_appends_to_a_new_stream_create_it_as_store_append_does(store: EventStore) -> None:
    async with AppendBatcher(store, linger=LINGER) as batcher:
        results = await asyncio.gather(
            *(batcher.append("brand-new", EventData("E", {"n": n}), partition_key=f"k{n}") for n in range(5))
        )
    assert all(result.partitions == (0,) for result in results)
    assert sorted(result.first_offset for result in results) == list(range(5))
    assert (await store.get_stream("brand-new")).partitions == 1


async def test_a_write_only_principal_appends_through_a_batcher(store: EventStore) -> None:
    policy = AccessPolicy([Grant.of(principals=["ingest"], streams=["ingest-*"], permissions=["write"])])
    as_ingest = authorized_store(store, principal="ingest", policy=policy)
    async with AppendBatcher(as_ingest, linger=LINGER) as batcher:
        allowed = await asyncio.gather(*(batcher.append("ingest-a", EventData("E", {"n": n})) for n in range(5)))
        # Keyed: the partition count cannot be read, so these go to the store unbatched (and still work).
        keyed = await batcher.append("ingest-a", EventData("E", {"n": 5}), partition_key="k")
        denied = await asyncio.gather(
            batcher.append("other", EventData("E", {})), batcher.append("other", EventData("E", {})),
            return_exceptions=True,
        )  # fmt: skip
    assert sorted(result.first_offset for result in allowed) == list(range(5))
    assert all(isinstance(outcome, PermissionDeniedError) for outcome in denied)
    assert keyed.offsets == (5,)
    assert len(await read(store, "ingest-a")) == 6


async def test_a_batch_never_acts_as_one_of_its_callers(store: EventStore) -> None:
    # A caller-scoped store authorizes by the caller's context; a batch belongs to no single caller,
    # so it runs in an empty context and is refused rather than authorized as whoever came first.
    policy = AccessPolicy([Grant.of(principals=["ingest"], streams=["*"], permissions=["write"])])
    async with AppendBatcher(caller_scoped_store(store, policy), linger=LINGER) as batcher:
        with caller_context("ingest"):
            outcomes = await asyncio.gather(
                batcher.append("scoped", EventData("E", {})), batcher.append("scoped", EventData("E", {})),
                return_exceptions=True,
            )  # fmt: skip
    assert all(isinstance(outcome, UnauthenticatedError) for outcome in outcomes)
    assert await store.list_streams() == []


async def test_callers_authorized_one_by_one_then_batched(store: EventStore) -> None:
    # The server wiring: authorize each call in its caller's context, then batch on the shared store.
    policy = AccessPolicy(
        [
            Grant.of(principals=["ingest"], streams=["orders"], permissions=["write"]),
            Grant.of(principals=["reader"], streams=["orders"], permissions=["read"]),
        ]
    )
    batching = batched(store, linger=LINGER)
    served = caller_scoped_store(batching, policy)

    async def append_as(principal: str, n: int) -> AppendResult:
        with caller_context(principal):
            return await served.append("orders", EventData("E", {"n": n, "by": principal}))

    outcomes = await asyncio.gather(
        *(append_as("ingest" if n % 3 else "reader", n) for n in range(12)), return_exceptions=True
    )
    await batching.batcher.close()
    for n, outcome in enumerate(outcomes):
        assert isinstance(outcome, AppendResult if n % 3 else PermissionDeniedError)
    stored = await read(store, "orders")
    assert sorted(event.data["n"] for event in stored) == [n for n in range(12) if n % 3]
    assert len(batch_sizes(stored)) < 8
