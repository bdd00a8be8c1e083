"""Contract: stream lifecycle (archive, unarchive, soft and hard delete, restore, purge, auto-create
rules, who and when), on both backends; and on PostgreSQL, that an archive racing appends and
enqueues never lets one through after it commits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest

import sluice
from sluice import (
    ConsumerGroupOptions,
    EventData,
    EventStore,
    StreamConfig,
    StreamNotFoundError,
    StreamType,
)
from sluice.core.auto_create import AutoCreateRule
from sluice.core.errors import InvalidArgumentError, StreamArchivedError, StreamDeletedError
from sluice.core.lifecycle import AUTO_CREATE_ACTOR
from sluice.storage.postgres.queries import query
from sluice.storage.postgres.store import PostgresEventStore
from tests.contract.group_helpers import take
from tests.store_fixtures import FAST_POLL

FAST_GROUP = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


async def test_an_archived_stream_refuses_appends_but_reads_and_groups_still_work(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"), actor="ada")
    await store.append("orders", [EventData("E", {"n": n}) for n in range(3)])

    archived = await store.archive_stream("orders", actor="grace")
    assert archived.archived
    assert archived.archived_by == "grace"
    assert archived.archived_at is not None
    with pytest.raises(StreamArchivedError, match="'orders' is archived"):
        await store.append("orders", EventData("E", {"n": 3}))
    assert (await store.get_stream("orders")).head == 3  # nothing was stored

    assert [event.data["n"] async for event in store.read_stream("orders")] == [0, 1, 2]
    async for event in store.subscribe("orders", from_offset=2):
        assert event.offset == 2
        break
    assert [event.offset async for event in store.read_all()] == [0, 1, 2]
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="g", consumer_id="w", options=FAST_GROUP) as consumption:
        assert [event.data["n"] for event in await take(consumption, 3)] == [0, 1, 2]
    assert (await reader.describe("orders", "g")).lag_events == 0

    again = await store.archive_stream("orders", actor="someone else")  # a no-op: the first archive stays
    assert (again.archived_at, again.archived_by) == (archived.archived_at, "grace")


async def test_an_archived_queue_refuses_enqueues_but_can_be_drained(store: EventStore) -> None:
    await store.enqueue("jobs", EventData("Job", {"job": 1}))
    await store.archive_stream("jobs")
    with pytest.raises(StreamArchivedError):
        await store.enqueue("jobs", EventData("Job", {"job": 2}))
    with pytest.raises(StreamArchivedError):
        await store.enqueue_many("jobs", [EventData("Job", {"job": 3}), EventData("Job", {"job": 4})])
    message = await store.dequeue("jobs")
    assert message is not None
    assert message.data == {"job": 1}
    await store.acknowledge("jobs", message.receipt)
    assert await store.dequeue("jobs") is None


async def test_unarchive_makes_a_stream_writable_again(store: EventStore) -> None:
    await store.append("orders", EventData("E", {}))
    await store.archive_stream("orders")
    unarchived = await store.unarchive_stream("orders", actor="ada")
    assert not unarchived.archived
    assert unarchived.archived_by is None
    result = await store.append("orders", EventData("E", {}))
    assert result.offsets == (1,)
    assert not (await store.unarchive_stream("orders")).archived  # a no-op on a writable stream


async def test_soft_delete_hides_a_stream_and_restore_brings_it_back(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    await store.append("orders", [EventData("E", {"n": n}) for n in range(4)], partition=1)
    await store.create_stream(StreamConfig(name="other"))

    await store.delete_stream("orders", soft=True, actor="ada")
    with pytest.raises(StreamNotFoundError):
        await store.get_stream("orders")
    assert [info.name for info in await store.list_streams()] == ["other"]
    [hidden] = [info for info in await store.list_streams(include_deleted=True) if info.name == "orders"]
    assert hidden.deleted
    assert hidden.deleted_by == "ada"
    assert hidden.deleted_at is not None
    with pytest.raises(StreamDeletedError, match="soft delete"):
        await store.append("orders", EventData("E", {}))
    with pytest.raises(StreamNotFoundError):  # StreamDeletedError is a StreamNotFoundError
        await store.append("orders", EventData("E", {}))
    with pytest.raises(StreamDeletedError):
        await store.create_stream(StreamConfig(name="orders", partitions=2))
    with pytest.raises(StreamNotFoundError):
        _ = [event async for event in store.read_stream("orders", partition=1)]
    with pytest.raises(StreamDeletedError):
        await store.archive_stream("orders")

    restored = await store.restore_stream("orders", actor="grace")
    assert not restored.deleted
    assert restored.deleted_by is None
    assert [event.data["n"] async for event in store.read_stream("orders", partition=1)] == [0, 1, 2, 3]
    assert (await store.append("orders", EventData("E", {}), partition=1)).offsets == (4,)
    assert [info.name for info in await store.list_streams()] == ["orders", "other"]


async def test_soft_delete_of_a_queue_refuses_enqueues(store: EventStore) -> None:
    await store.enqueue("jobs", EventData("Job", {"job": 1}))
    await store.delete_stream("jobs", soft=True)
    with pytest.raises(StreamDeletedError):
        await store.enqueue("jobs", EventData("Job", {"job": 2}))
    with pytest.raises(StreamDeletedError):
        await store.dequeue("jobs")
    with pytest.raises(StreamDeletedError):
        await store.queue_depth("jobs")
    await store.restore_stream("jobs")
    await store.enqueue("jobs", EventData("Job", {"job": 2}))
    assert (await store.queue_depth("jobs")).waiting == 2


async def test_purge_removes_soft_deleted_streams_for_good(store: EventStore) -> None:
    await store.append("old", EventData("E", {}))
    await store.append("kept", EventData("E", {}))
    await store.delete_stream("old", soft=True)
    assert await store.purge_deleted_streams() == []  # deleted within the grace period
    assert await store.purge_deleted_streams(older_than=timedelta(0)) == ["old"]
    assert [info.name for info in await store.list_streams(include_deleted=True)] == ["kept"]
    with pytest.raises(StreamNotFoundError):
        await store.restore_stream("old")
    created = await store.append("old", EventData("E", {}))  # the name is free again, the data gone
    assert created.offsets == (0,)
    assert [event.offset async for event in store.read_all()] == [0, 0]  # kept's and the new old's
    with pytest.raises(InvalidArgumentError):
        await store.purge_deleted_streams(older_than=timedelta(seconds=-1))


async def test_restore_is_refused_once_the_grace_period_is_over(store_url: str) -> None:
    async with await sluice.connect(store_url, deleted_stream_grace_period=timedelta(milliseconds=200)) as store:
        await store.append("orders", EventData("E", {}))
        await store.delete_stream("orders", soft=True)
        await asyncio.sleep(0.4)
        with pytest.raises(StreamDeletedError, match="grace period"):
            await store.restore_stream("orders")
        assert await store.purge_deleted_streams() == ["orders"]


async def test_hard_delete_removes_the_data_also_of_a_soft_deleted_stream(store: EventStore) -> None:
    await store.append("orders", [EventData("E", {}) for _ in range(3)])
    await store.delete_stream("orders", soft=True)
    await store.delete_stream("orders")  # today's meaning of delete_stream: everything, for good
    assert await store.list_streams(include_deleted=True) == []
    assert [event async for event in store.read_all()] == []
    with pytest.raises(StreamNotFoundError):
        await store.delete_stream("orders")
    with pytest.raises(StreamNotFoundError):
        await store.restore_stream("orders")


async def test_lifecycle_changes_record_who_and_when(store: EventStore) -> None:
    created = await store.create_stream(StreamConfig(name="orders"), actor="ada")
    assert created.created_by == "ada"
    assert created.archived_at is None
    assert created.deleted_at is None
    archived = await store.archive_stream("orders", actor="bob")
    await store.delete_stream("orders", soft=True, actor="carol")
    [info] = await store.list_streams(include_deleted=True)
    assert (info.created_by, info.archived_by, info.deleted_by) == ("ada", "bob", "carol")
    assert info.created_at <= archived.archived_at <= info.deleted_at  # type: ignore[operator]
    restored = await store.restore_stream("orders")
    assert restored.archived
    assert restored.archived_by == "bob"
    await store.append("auto", EventData("E", {}))
    assert (await store.get_stream("auto")).created_by == AUTO_CREATE_ACTOR
    assert (await store.create_stream(StreamConfig(name="anonymous"))).created_by is None
    with pytest.raises(InvalidArgumentError, match="actor"):
        await store.archive_stream("orders", actor="")
    with pytest.raises(StreamNotFoundError):
        await store.archive_stream("missing")


async def test_auto_create_rules_pick_a_template_or_deny(store_url: str) -> None:
    rules = [
        AutoCreateRule(pattern="orders-*", partitions=3),
        AutoCreateRule(pattern="orders-audit", create=False),  # an exact name beats the pattern
        AutoCreateRule(pattern="jobs-*", max_attempts=2),
    ]
    async with await sluice.connect(
        store_url, auto_create_streams=False, auto_create_rules=rules, poll_interval=FAST_POLL
    ) as store:
        await store.append("orders-eu", EventData("E", {}))
        assert (await store.get_stream("orders-eu")).partitions == 3
        await store.enqueue("jobs-email", EventData("Job", {"to": "ada"}))
        queue = await store.get_stream("jobs-email")
        assert (queue.type, queue.max_attempts) == (StreamType.EPHEMERAL, 2)
        for denied in ("orders-audit", "payments"):
            with pytest.raises(StreamNotFoundError):
                await store.append(denied, EventData("E", {}))
        with pytest.raises(StreamNotFoundError):
            await store.enqueue("emails", EventData("Job", {}))
        assert [info.name for info in await store.list_streams()] == ["jobs-email", "orders-eu"]


async def test_a_deny_rule_overrides_the_default(store_url: str) -> None:
    async with await sluice.connect(
        store_url, auto_create_rules=[AutoCreateRule(pattern="tmp-*", create=False)]
    ) as store:
        with pytest.raises(StreamNotFoundError):
            await store.append("tmp-1", EventData("E", {}))
        await store.append("orders", EventData("E", {}))  # no rule matches: auto_create_streams decides
        assert [info.name for info in await store.list_streams()] == ["orders"]


def test_auto_create_patterns_are_validated() -> None:
    with pytest.raises(InvalidArgumentError, match="pattern"):
        AutoCreateRule(pattern="orders;drop")
    with pytest.raises(InvalidArgumentError, match="auto_create_rules"):
        sluice.StoreOptions(auto_create_rules=[{"pattern": ""}])  # type: ignore[arg-type]


async def test_appends_racing_an_archive_never_commit_after_it(store: EventStore) -> None:
    """Appenders and enqueuers run flat out while the stream and queue are archived: whatever the
    backends let through must have committed before the archive, so the heads read right after
    the archive returns never move again."""
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    stored: list[int] = []
    enqueued: list[int] = []

    async def append_until_refused(writer: int) -> None:
        while True:
            try:
                await store.append("orders", EventData("E", {"writer": writer}), partition=writer % 2)
            except StreamArchivedError:
                return
            stored.append(writer)
            await asyncio.sleep(0)  # the memory backend never awaits: let the others run

    async def enqueue_until_refused(writer: int) -> None:
        while True:
            try:
                await store.enqueue("jobs", EventData("Job", {"writer": writer}))
            except StreamArchivedError:
                return
            enqueued.append(writer)
            await asyncio.sleep(0)

    writers = [asyncio.create_task(append_until_refused(n)) for n in range(6)]
    writers += [asyncio.create_task(enqueue_until_refused(n)) for n in range(3)]
    # Archive once both have stored something and while they run flat out (a fixed 0.3 s was seen to end
    # before the first append committed on a machine at load average 12).
    async with asyncio.timeout(30):
        while not (stored and enqueued):  # noqa: ASYNC110 (polls the other tasks' progress)
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    await store.archive_stream("orders")
    await store.archive_stream("jobs")
    heads = [partition.head for partition in (await store.get_stream("orders")).partition_heads]
    depth = (await store.queue_depth("jobs")).waiting
    await asyncio.wait_for(asyncio.gather(*writers), 30)
    assert [partition.head for partition in (await store.get_stream("orders")).partition_heads] == heads
    assert sum(heads) == len(stored) > 0
    assert (await store.queue_depth("jobs")).waiting == depth == len(enqueued) > 0


@pytest.mark.postgres
async def test_an_archive_waits_for_an_append_in_flight_and_refuses_one_that_waited_for_it(
    postgres_dsn: str,
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        assert isinstance(store, PostgresEventStore)
        await store.append("orders", EventData("E", {"n": 0}))
        holder = await asyncpg.connect(postgres_dsn, server_settings={"search_path": "sluice"})
        try:
            # An append whose transaction is still open holds the partition's lock: the archive waits.
            transaction = holder.transaction()
            await transaction.start()
            await holder.fetchval(
                "SELECT append_events('orders', 0, NULL, false, $1::uuid[], ARRAY['E'], ARRAY[1], "
                "ARRAY['application/json'], ARRAY['{}'::bytea], ARRAY['{}'::jsonb], NULL)",
                [uuid.uuid4()],
            )
            archiving = asyncio.create_task(store.archive_stream("orders"))
            await asyncio.sleep(0.3)
            assert not archiving.done()
            await transaction.commit()
            await asyncio.wait_for(archiving, 10)
            assert (await store.get_stream("orders")).head == 2  # the append committed first

            # An archive whose transaction is still open holds the lock: an append waits, then is refused.
            await store.unarchive_stream("orders")
            transaction = holder.transaction()
            await transaction.start()
            await holder.fetchval(query("change_lifecycle"), "orders", "archive", "holder", timedelta(days=1))
            appending = asyncio.create_task(store.append("orders", EventData("E", {"n": 2})))
            await asyncio.sleep(0.3)
            assert not appending.done()
            await transaction.commit()
            with pytest.raises(StreamArchivedError):
                await asyncio.wait_for(appending, 10)
            assert (await store.get_stream("orders")).head == 2
        finally:
            await holder.close()


@pytest.mark.postgres
async def test_an_append_that_waited_for_a_soft_delete_is_refused_and_a_restore_reopens_every_partition(
    postgres_dsn: str,
) -> None:
    """The append statement's snapshot predates its wait for the partition's lock, so it sees the soft delete
    that held the lock only on the counter row it re-reads (accepts_appends, migration 0014). A restore
    reopens every partition, an archived stream's restore none."""
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="orders", partitions=3))
        await store.append("orders", EventData("E", {"n": 0}), partition=1)
        holder = await asyncpg.connect(postgres_dsn, server_settings={"search_path": "sluice"})
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.fetchval(query("change_lifecycle"), "orders", "soft_delete", "holder", timedelta(days=1))
            appending = asyncio.create_task(store.append("orders", EventData("E", {"n": 1}), partition=1))
            await asyncio.sleep(0.3)
            assert not appending.done()
            await transaction.commit()
            with pytest.raises(StreamDeletedError):
                await asyncio.wait_for(appending, 10)
            closed = await holder.fetch("SELECT accepts_appends FROM stream_partitions ORDER BY partition")
            assert [row["accepts_appends"] for row in closed] == [False, False, False]

            await store.restore_stream("orders")
            for partition in range(3):
                await store.append("orders", EventData("E", {"n": 2}), partition=partition)
            assert [p.head for p in (await store.get_stream("orders")).partition_heads] == [1, 2, 1]

            await store.archive_stream("orders")
            await store.delete_stream("orders", soft=True)
            await store.restore_stream("orders")  # still archived: nothing reopens
            with pytest.raises(StreamArchivedError):
                await store.append("orders", EventData("E", {"n": 3}))
            still_closed = await holder.fetch("SELECT accepts_appends FROM stream_partitions ORDER BY partition")
            assert [row["accepts_appends"] for row in still_closed] == [False, False, False]
            await store.unarchive_stream("orders")
            assert (await store.append("orders", EventData("E", {"n": 4}), partition=2)).offsets == (1,)
        finally:
            await holder.close()


async def test_partitions_added_to_an_archived_stream_take_appends_only_once_it_is_unarchived(
    store: EventStore,
) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=1))
    await store.archive_stream("orders")
    await store.set_partitions("orders", 3)
    with pytest.raises(StreamArchivedError):
        await store.append("orders", EventData("E", {"n": 0}), partition=2)
    await store.unarchive_stream("orders")
    for partition in range(3):
        assert (await store.append("orders", EventData("E", {"n": 1}), partition=partition)).offsets == (0,)


@pytest.mark.postgres
async def test_an_archive_waits_for_an_enqueue_in_flight_and_refuses_one_that_waited_for_it(
    postgres_dsn: str,
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.enqueue("jobs", EventData("Job", {"n": 0}))
        holder = await asyncpg.connect(postgres_dsn, server_settings={"search_path": "sluice"})
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.fetch(
                query("enqueue_messages"),
                "jobs",
                ["Job"],
                [1],
                ["application/json"],
                [b"{}"],
                ["{}"],
                [None],
                None,
                timedelta(0),
            )
            archiving = asyncio.create_task(store.archive_stream("jobs"))
            await asyncio.sleep(0.3)
            assert not archiving.done()
            await transaction.commit()
            await asyncio.wait_for(archiving, 10)
            assert (await store.queue_depth("jobs")).waiting == 2  # the enqueue committed first

            await store.unarchive_stream("jobs")
            transaction = holder.transaction()
            await transaction.start()
            await holder.fetchval(query("change_lifecycle"), "jobs", "archive", "holder", timedelta(days=1))
            enqueueing = asyncio.create_task(store.enqueue("jobs", EventData("Job", {"n": 2})))
            await asyncio.sleep(0.3)
            assert not enqueueing.done()
            await transaction.commit()
            with pytest.raises(StreamArchivedError):
                await asyncio.wait_for(enqueueing, 10)
            assert (await store.queue_depth("jobs")).waiting == 2
        finally:
            await holder.close()


def test_the_most_specific_auto_create_rule_wins_and_ties_go_to_the_first() -> None:
    rules = (
        AutoCreateRule(pattern="*", partitions=1),
        AutoCreateRule(pattern="orders-u*", partitions=2),
        AutoCreateRule(pattern="orders-?s", partitions=4),  # as specific as the one before: listed later, loses
        AutoCreateRule(pattern="orders-*", partitions=3),
        AutoCreateRule(pattern="orders-eu", create=False),
    )
    options = sluice.StoreOptions(auto_create_streams=False, auto_create_rules=rules)
    partitions = {
        name: config.partitions if (config := options.auto_create_config(name, StreamType.PERSISTENT)) else None
        for name in ("orders-us", "orders-eu", "orders-asia", "payments")
    }
    assert partitions == {"orders-us": 2, "orders-eu": None, "orders-asia": 3, "payments": 1}
    queue = options.auto_create_config("orders-us", StreamType.EPHEMERAL)
    assert queue is not None
    assert (queue.type, queue.partitions) == (StreamType.EPHEMERAL, 1)
