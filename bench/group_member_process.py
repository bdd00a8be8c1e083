"""One consumer-group member as its own process, for the multi-process benchmark:

    python -m bench.group_member_process DSN STREAM GROUP CONSUMER_ID events|batches FIRST_EVENT_FILE

Joins at the stream's head (nothing to do), so the benchmark can wait until the group has settled
and then start everyone at once with a forced offset reset. Runs until SIGTERM. ``events`` consumes
with the per-event iterator, ``batches`` with ``consume_batches``; both decode every payload. The wall-clock
time of the first event delivered is written to FIRST_EVENT_FILE, so the benchmark's clock starts when work
starts (not when the members notice the reset that starts them, up to a heartbeat later).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import sluice
from bench.consumer_groups import OPTIONS


async def main(arguments: list[str]) -> None:
    dsn, stream, group, consumer_id, api, first_event_file = arguments
    store = await sluice.connect(dsn, pool_min_size=3, pool_max_size=3, poll_interval=timedelta(milliseconds=50))
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    options = OPTIONS.model_copy(update={"start_position": sluice.StartPosition(start_from=sluice.StartFrom.LATEST)})
    reader = store.consumer_groups()
    processed = 0
    first_event = Path(first_event_file)

    def note_first_event() -> None:
        if not first_event.exists():
            first_event.write_text(repr(time.time()), encoding="utf-8")

    try:
        if api == "batches":
            async with reader.consume_batches(
                stream, group_id=group, consumer_id=consumer_id, options=options
            ) as batches:
                async for batch in batches:
                    note_first_event()
                    for event in batch.events:
                        processed += event.data is not None
        else:
            async with reader.consume(stream, group_id=group, consumer_id=consumer_id, options=options) as events:
                async for event in events:
                    if not processed:
                        note_first_event()
                    processed += event.data is not None
    except asyncio.CancelledError:
        pass
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:7]))
