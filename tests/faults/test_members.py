"""Faults of members rather than of the database: a member frozen (SIGSTOP) past its session and then
resumed, two live members sharing one consumer id, and stale commits through every door (the library's
``event.commit()``, gRPC's ``event.commit()``; REST has no commit route, so it is the admin door that
force-resets the group). Each module shares one dedicated PostgreSQL server, a new database per test."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

import sluice
from sluice import (
    ConsumerGroupOptions,
    EventData,
    EventStore,
    FencedError,
    OffsetCommitStrategy,
    StartPosition,
    StreamConfig,
)
from sluice.client import SluiceClient
from sluice.rest import create_app
from sluice.rpc.server import build_grpc_server
from tests.faults.traffic import CommitWatcher, describe_error
from tests.faults.workers import LibraryMember, start_worker

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(90)]

SESSION_SECONDS = 1.5


async def committed_offsets(store: EventStore, stream: str, group: str) -> list[int]:
    description = await store.consumer_groups().describe(stream, group)
    return [partition.committed_offset for partition in description.partitions]


async def test_a_member_frozen_past_its_session_cannot_commit_when_it_wakes(
    member_fault_dsn: str, tmp_path: Path
) -> None:
    """Worker a is SIGSTOPped in the middle of a slow event, b takes its partition over and goes on; when a
    wakes, its commits for the partition it lost must be refused: no committed offset ever goes back (which
    would deliver b's processed events again) or runs ahead of processed work."""
    async with await sluice.connect(member_fault_dsn) as store:
        await store.create_stream(StreamConfig(name="orders", partitions=2))
        for partition in range(2):
            await store.append(
                "orders", [EventData("E", {"seq": partition * 100 + n}) for n in range(20)], partition=partition
            )
        workers = [
            start_worker(
                member_fault_dsn,
                tmp_path,
                stream="orders",
                group="g",
                consumer_id=name,
                session_seconds=SESSION_SECONDS,
                work_seconds=0.1,
                extra=("--commit-strategy", "after_each"),
            )
            for name in ("a", "b")
        ]
        zombie, survivor = workers

        def processed(group: str) -> list:  # type: ignore[type-arg]
            return [record for worker in workers for record in worker.processed()]

        watcher = CommitWatcher(member_fault_dsn, processed)
        stop_watching = asyncio.Event()
        watching = asyncio.create_task(watcher.run(stop_watching), name="commit-watcher")
        try:
            deadline = time.monotonic() + 30
            while not (zombie.processed() and survivor.processed()):
                assert time.monotonic() < deadline, "both workers started: " + zombie.log_tail() + survivor.log_tail()
                await asyncio.sleep(0.1)
            zombie.process.send_signal(signal.SIGSTOP)
            frozen_at = time.time()
            await asyncio.sleep(3 * SESSION_SECONDS)
            zombie.process.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if sum(await committed_offsets(store, "orders", "g")) >= 40:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the zombie's late commits, if any, land now
            await watcher.check_once()
            final = await committed_offsets(store, "orders", "g")
        finally:
            stop_watching.set()
            await asyncio.wait_for(watching, timeout=10)
            alive = {worker.consumer_id: worker.process.poll() is None for worker in workers}
            codes = {worker.consumer_id: await asyncio.to_thread(worker.stop) for worker in workers}
    took_over = [r for r in survivor.processed() if r.at > frozen_at + SESSION_SECONDS]
    assert took_over, "the survivor processed events after the zombie's session ran out"
    assert not watcher.violations, "\n".join(watcher.violations[:10])
    assert final == [20, 20]
    assert alive == {"a": True, "b": True}, zombie.log_tail()
    assert codes == {"a": 0, "b": 0}


async def test_two_live_members_with_one_consumer_id_do_not_livelock(member_fault_dsn: str) -> None:
    """Two processes (here: two stores, so two instances) consume with the same consumer id. The older one
    must be fenced for good with a visible error; the group catches up, with few events processed twice
    and few epoch bumps (the bug: hundreds of bumps per partition, the group never catching up)."""
    async with (
        await sluice.connect(member_fault_dsn) as setup,
        await sluice.connect(member_fault_dsn) as first_process,
        await sluice.connect(member_fault_dsn) as second_process,
    ):
        await setup.create_stream(StreamConfig(name="orders", partitions=4))
        await setup.append("orders", [EventData("E", {"seq": n}) for n in range(200)])
        older = LibraryMember(first_process, "orders", "g", "twin", work_seconds=0.02)
        older.start()
        while len(older.processed) < 20:  # it works through its first batches (200 events take it 4 s)
            assert not older.task.done(), older.failure
            await asyncio.sleep(0.05)
        newer = LibraryMember(second_process, "orders", "g", "twin", work_seconds=0.02)
        newer.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                description = await setup.consumer_groups().describe("orders", "g")
                if description.lag_events == 0 and older.task.done():
                    break
                await asyncio.sleep(0.2)
            description = await setup.consumer_groups().describe("orders", "g")
        finally:
            await older.stop()
            await newer.stop()
    deliveries = len(older.processed) + len(newer.processed)
    epochs = [partition.epoch for partition in description.partitions]
    print(f"duplicate consumer id: {deliveries} deliveries of 200, epochs {epochs}, older: {older.failure}")
    assert description.lag_events == 0, f"the group did not catch up: lag {description.lag_events}, epochs {epochs}"
    assert max(epochs) <= 10, f"ownership went back and forth: epochs {epochs}"
    assert deliveries <= 200 + 40, f"{deliveries} deliveries of 200 events"
    assert newer.failure is None, f"the newer instance stopped: {newer.failure}"
    assert older.failure is not None, "the older instance kept consuming next to the newer one"
    assert "duplicate" in older.failure.lower(), f"the older instance did not learn why it stopped: {older.failure}"


async def hold_event_50(events: object) -> object:
    async for event in events:  # type: ignore[attr-defined]
        if event.offset == 50:
            return event
    raise AssertionError("the consumption ended before offset 50")


async def test_a_stale_commit_is_refused_through_the_library(member_fault_dsn: str) -> None:
    """The member holds event 50; an admin force-resets the group to the earliest offset; the member
    commits the held event after it has learned the new epoch: FencedError, and the committed offset
    stays where the reset put it."""
    async with (
        await sluice.connect(member_fault_dsn) as admin,
        await sluice.connect(member_fault_dsn) as member_store,
    ):
        await admin.append("orders", [EventData("E", {"seq": n}) for n in range(60)])
        options = ConsumerGroupOptions(
            commit_strategy=OffsetCommitStrategy.MANUAL,
            batch_size=100,
            session_timeout=timedelta(seconds=3),
            heartbeat_interval=timedelta(milliseconds=300),
        )
        async with member_store.consumer_groups().consume(
            "orders", group_id="g", consumer_id="m", options=options
        ) as events:
            held = await hold_event_50(events)
            await admin.consumer_groups().reset_offsets("orders", "g", to=StartPosition(), force=True)
            await asyncio.sleep(1.0)  # heartbeats: the member owns the partition again, under a new epoch
            with pytest.raises(FencedError):
                await held.commit()  # type: ignore[attr-defined]
            assert await committed_offsets(admin, "orders", "g") == [0]


async def test_a_stale_commit_is_refused_through_grpc_after_a_forced_reset_over_rest(member_fault_dsn: str) -> None:
    """The same through the other doors: the member consumes over gRPC, the admin resets over REST
    (``POST .../groups/g/reset-offset`` with force), the held event's ``commit()`` must be refused."""
    async with await sluice.connect(member_fault_dsn, poll_interval=timedelta(milliseconds=50)) as store:
        await store.append("orders", [EventData("E", {"seq": n}) for n in range(60)])
        server = build_grpc_server(store, address="127.0.0.1:0")
        await server.start()
        try:
            async with (
                await SluiceClient.connect(f"127.0.0.1:{server.port}") as client,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=create_app(store)), base_url="http://sluice.test"
                ) as rest,
            ):
                consumption = await client.consume(
                    "orders", group_id="g", consumer_id="m", prefetch=100, session_timeout=timedelta(seconds=3)
                )
                async with consumption:
                    held = await hold_event_50(consumption)
                    reset = await rest.post(
                        "/api/event-streams/orders/groups/g/reset-offset", json={"to": "earliest", "force": True}
                    )
                    assert reset.status_code == 200, reset.text
                    await asyncio.sleep(1.5)  # a heartbeat: the server's member owns the partition again
                    outcome = "accepted"
                    try:
                        await asyncio.wait_for(held.commit(), timeout=10)  # type: ignore[attr-defined]
                    except FencedError:
                        outcome = "fenced"
                    except Exception as error:
                        outcome = describe_error(error)
                    committed = await committed_offsets(store, "orders", "g")
        finally:
            await server.stop(grace_seconds=1)
    assert (outcome, committed) == ("fenced", [0])
