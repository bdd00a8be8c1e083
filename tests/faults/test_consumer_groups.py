"""A consumer group of two ``sluice consume`` worker processes and a group of two library members keep
consuming while PostgreSQL is killed with -9, fast-restarted, or has its backends terminated. Events keep
coming throughout. Checked: every event is processed, no committed offset ever runs ahead of processed
work (sampled all along), no worker process exited and no member stopped, and how long each group took
to process new events after the database came back (printed, and kept in .cache/faults-report.json)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import sluice
from sluice import StreamConfig
from tests.faults.database import DATABASE_FAULTS, Fault, FaultyDatabase
from tests.faults.report import first_after, report_resume
from tests.faults.traffic import CommitWatcher, Feeder, Processed
from tests.faults.workers import LibraryMember, WorkerProcess, start_worker

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(120)]

PARTITIONS = 4
STARTUP_SECONDS = 30.0
AFTER_FAULT_SECONDS = 1.5
CATCH_UP_SECONDS = 25.0
"""After the feeder stops: every event processed by both groups within this (several sessions)."""


def missing(processed: list[Processed], appended: int) -> list[int]:
    done = {record.seq for record in processed}
    return [seq for seq in range(appended) if seq not in done]


async def wait_for(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.parametrize("fault", DATABASE_FAULTS, ids=str)
async def test_consumer_groups_process_everything_and_resume(
    faulty_database: FaultyDatabase, fault: Fault, tmp_path: Path
) -> None:
    dsn = faulty_database.dsn
    async with await sluice.connect(dsn) as setup:
        await setup.create_stream(StreamConfig(name="orders", partitions=PARTITIONS))
    workers: list[WorkerProcess] = [
        start_worker(dsn, tmp_path, stream="orders", group="workers", consumer_id=f"worker-{n}") for n in range(2)
    ]
    feeder = Feeder(dsn, "orders")

    def worker_records() -> list[Processed]:
        return [record for worker in workers for record in worker.processed()]

    stop_feeding, stop_watching = asyncio.Event(), asyncio.Event()
    async with await sluice.connect(dsn) as store:
        members = [LibraryMember(store, "orders", "library", f"member-{n}") for n in range(2)]

        def member_records() -> list[Processed]:
            return [record for member in members for record in member.processed]

        watcher = CommitWatcher(dsn, lambda group: worker_records() if group == "workers" else member_records())
        for member in members:
            member.start()
        feeding = asyncio.create_task(feeder.run(stop_feeding), name="feeder")
        watching = asyncio.create_task(watcher.run(stop_watching), name="commit-watcher")
        try:
            started = await wait_for(lambda: len({r.consumer for r in worker_records()}) == 2, STARTUP_SECONDS)
            assert started, "both worker processes started consuming: " + " | ".join(w.log_tail() for w in workers)
            await asyncio.sleep(1.0)
            back_at = await faulty_database.inject(fault)
            await asyncio.sleep(AFTER_FAULT_SECONDS)
            stop_feeding.set()
            await asyncio.wait_for(feeding, timeout=15)
            appended = len(feeder.appended_at)

            def settled() -> bool:
                """Everything processed, or a member is gone (the outcome is known: no need to wait on)."""
                gone = any(w.process.poll() is not None for w in workers) or any(m.task.done() for m in members)
                return gone or (not missing(worker_records(), appended) and not missing(member_records(), appended))

            await wait_for(settled, CATCH_UP_SECONDS)
            with contextlib.suppress(Exception):
                await watcher.check_once()
        finally:
            stop_feeding.set()
            stop_watching.set()
            await asyncio.wait_for(watching, timeout=10)
            exited = {worker.consumer_id: worker.process.poll() for worker in workers}
            failures = {member.consumer_id: member.failure for member in members}
            for member in members:
                await member.stop()
            exit_codes = {worker.consumer_id: await asyncio.to_thread(worker.stop) for worker in workers}

    first_new = feeder.first_after(back_at)
    assert first_new is not None, f"the feeder appended after the database came back: {feeder.errors[-3:]}"
    resumed = {}
    for name, records in (("consume-workers", worker_records()), ("library-members", member_records())):
        times = [record.at for record in records if record.seq >= first_new]
        resumed[name] = first_after(times, back_at)
        report_resume(name, fault, resumed[name], within=AFTER_FAULT_SECONDS + CATCH_UP_SECONDS)

    problems = []
    for worker in workers:
        if exited[worker.consumer_id] is not None:
            problems.append(
                f"{worker.consumer_id} exited with {exited[worker.consumer_id]} during the test:\n{worker.log_tail()}"
            )
        elif exit_codes[worker.consumer_id] != 0:
            problems.append(f"{worker.consumer_id} did not stop cleanly on SIGTERM ({exit_codes[worker.consumer_id]})")
    problems += [f"{name} stopped: {failure}" for name, failure in failures.items() if failure is not None]
    if lost := missing(worker_records(), appended):
        problems.append(f"consume workers never processed {len(lost)} of {appended} events, e.g. {lost[:5]}")
    if lost := missing(member_records(), appended):
        problems.append(f"library members never processed {len(lost)} of {appended} events, e.g. {lost[:5]}")
    problems += watcher.violations[:10]
    print(
        f"consumers {fault}: {appended} events; workers processed {len(worker_records())}, "
        f"members {len(member_records())}; {watcher.samples} commit samples"
    )
    assert watcher.samples > 0
    assert not problems, "\n".join(problems)
