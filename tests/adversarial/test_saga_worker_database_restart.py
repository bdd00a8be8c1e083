"""A saga worker rides out a PostgreSQL kill -9 and restart. Its work-queue loop used to let the first
ConnectionLostError out of ``dequeue`` (or of the ``nack`` after a failed step), which ended the whole
worker (``sluice sagas run`` exited 1 on every restart). Now it waits with backoff and carries on: an
order placed after the restart completes."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

import sluice
from sluice import EventData, RecordedEvent
from sluice.services.sagas import Saga, SagaStatus, SagaStep, SagaTrigger, StepExecution, run_saga_worker, saga_id_for
from sluice.services.sagas.repositories import saga_repository
from tests.faults.database import Fault, FaultyDatabase

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _order_id(event: RecordedEvent) -> str | None:
    return str(event.data["order_id"])


async def _nothing(_execution: StepExecution) -> None:
    return None


SAGA = Saga(
    "fulfilment",
    started_by=SagaTrigger(stream="orders", event_type="OrderPlaced", correlation=_order_id),
    steps=[SagaStep("reserve", action=_nothing), SagaStep("ship", action=_nothing)],
)


async def _status(store: sluice.EventStore, order_id: str) -> SagaStatus | None:
    with contextlib.suppress(sluice.ConnectionLostError):
        instance = await saga_repository(store).load(saga_id_for("fulfilment", order_id))
        return None if instance is None else instance.status
    return None


async def _completed(store: sluice.EventStore, order_id: str) -> None:
    for _ in range(300):
        if await _status(store, order_id) is SagaStatus.COMPLETED:
            return
        await asyncio.sleep(0.1)
    assert await _status(store, order_id) is SagaStatus.COMPLETED


async def test_saga_worker_survives_a_database_restart(freezable_database: FaultyDatabase) -> None:
    store = await sluice.connect(freezable_database.dsn, poll_interval=timedelta(milliseconds=100))
    ready = asyncio.Event()
    worker = asyncio.create_task(run_saga_worker(store, SAGA, worker_id="w-1", lease=timedelta(seconds=5), ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        await store.append("orders", EventData("OrderPlaced", {"order_id": "before"}))
        await _completed(store, "before")
        await asyncio.to_thread(freezable_database.crash_and_restart, Fault.KILL_9)
        await asyncio.sleep(2)
        assert not worker.done(), worker.exception()
        for _ in range(50):
            with contextlib.suppress(sluice.ConnectionLostError):
                await store.append("orders", EventData("OrderPlaced", {"order_id": "after"}))
                break
            await asyncio.sleep(0.1)
        await _completed(store, "after")
        assert not worker.done()
    finally:
        worker.cancel()
        with contextlib.suppress(BaseException):
            await worker
        await store.close()
