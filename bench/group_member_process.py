"""One consumer-group member as its own process, for the multi-process benchmark:

    python -m bench.group_member_process DSN STREAM GROUP CONSUMER_ID events|batches

Joins at the stream's head (nothing to do), so the benchmark can wait until the group has settled
and then start everyone at once with a forced offset reset. Runs until SIGTERM. ``events`` consumes
with the per-event iterator, ``batches`` with ``consume_batches``; both decode every payload.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

import sluice
from bench.consumer_groups import OPTIONS


async def main(dsn: str, stream: str, group: str, consumer_id: str, api: str) -> None:
    store = await sluice.connect(dsn, pool_min_size=3, pool_max_size=3, poll_interval=timedelta(milliseconds=50))
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    options = OPTIONS.model_copy(update={"start_position": sluice.StartPosition(start_from=sluice.StartFrom.LATEST)})
    reader = store.consumer_groups()
    processed = 0
    try:
        if api == "batches":
            async with reader.consume_batches(
                stream, group_id=group, consumer_id=consumer_id, options=options
            ) as batches:
                async for batch in batches:
                    for event in batch.events:
                        processed += event.data is not None
        else:
            async with reader.consume(stream, group_id=group, consumer_id=consumer_id, options=options) as events:
                async for event in events:
                    processed += event.data is not None
    except asyncio.CancelledError:
        pass
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
