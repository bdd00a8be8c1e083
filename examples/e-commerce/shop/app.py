"""Everything the shop runs, in one process: the saga worker, the payment service and the
order-summary projection (in production each would be its own Deployment)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from shop.payments import run_payment_service
from shop.saga import saga
from shop.summary import summary
from sluice.services.projections import ProjectionRunner
from sluice.services.sagas import run_saga_worker
from sluice.store import EventStore

STARTUP_TIMEOUT_SECONDS = 30


@contextlib.asynccontextmanager
async def running_shop(store: EventStore, *, lease: timedelta = timedelta(seconds=30)) -> AsyncIterator[None]:
    """Run the saga worker, the payment service and the projection until the block ends."""
    ready = asyncio.Event()
    projection = ProjectionRunner(summary, store)
    tasks = [
        asyncio.create_task(run_saga_worker(store, saga, worker_id="shop-1", lease=lease, ready=ready)),
        asyncio.create_task(run_payment_service(store)),
        asyncio.create_task(projection.run()),
    ]
    try:
        ready_wait = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            [ready_wait, *tasks], timeout=STARTUP_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if ready_wait not in done:
            ready_wait.cancel()
            for task in done:
                task.result()  # a component that failed at startup raises here
            raise TimeoutError("the saga worker did not start")
        yield
    finally:
        projection.stop()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result
