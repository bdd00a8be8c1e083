"""A consumer-group worker process for the fault tests: consumes a stream as one member and records
every event it processes in ``public.processed`` (a real side effect that survives a SIGKILL).

    python -m tests.postgres.group_worker DSN STREAM GROUP CONSUMER_ID [--delay SECONDS] [--session-timeout SECONDS]

SIGTERM leaves the group cleanly (finish the event in hand, commit what was processed, then leave);
SIGKILL and SIGSTOP are the crashes the tests inflict. On exit it records its stats in ``public.worker_stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

import asyncpg

import sluice

OPTIONS = sluice.ConsumerGroupOptions(
    commit_strategy=sluice.OffsetCommitStrategy.AFTER_BATCH,
    batch_size=10,
    session_timeout=timedelta(seconds=2),
    heartbeat_interval=timedelta(milliseconds=300),
)


async def main(
    dsn: str, stream: str, group: str, consumer_id: str, *, delay: float, manual: bool, session_timeout: float
) -> None:
    store = await sluice.connect(dsn, poll_interval=timedelta(milliseconds=100))
    effects = await asyncpg.connect(dsn)
    options = OPTIONS.model_copy(update={"session_timeout": timedelta(seconds=session_timeout)})
    if manual:
        options = options.model_copy(update={"commit_strategy": sluice.OffsetCommitStrategy.MANUAL})
    consumption = store.consumer_groups().consume(stream, group_id=group, consumer_id=consumer_id, options=options)
    refused_commits = 0
    stopping = asyncio.Event()
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        # Finish the event in hand, then leave; if idle (waiting for events), stop waiting.
        stopping.set()
        asyncio.get_running_loop().call_later(0.5, task.cancel)

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    try:
        async with consumption:
            async for event in consumption:
                await effects.execute(
                    "INSERT INTO public.processed (consumer_id, partition, event_offset) VALUES ($1, $2, $3)",
                    consumer_id,
                    event.partition,
                    event.offset,
                )
                await asyncio.sleep(delay)
                if manual:
                    try:
                        await event.commit()
                    except sluice.FencedError:
                        refused_commits += 1
                if stopping.is_set():
                    break
    except asyncio.CancelledError:
        pass
    finally:
        stats = consumption.stats
        await effects.execute(
            "INSERT INTO public.worker_stats (consumer_id, delivered, commits, fenced) VALUES ($1, $2, $3, $4)",
            consumer_id,
            stats.delivered,
            stats.commits,
            stats.fenced + refused_commits,
        )
        await effects.close()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("stream")
    parser.add_argument("group")
    parser.add_argument("consumer_id")
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--manual", action="store_true", help="commit each event itself (MANUAL strategy)")
    parser.add_argument("--session-timeout", type=float, default=OPTIONS.session_timeout.total_seconds())
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.dsn,
            arguments.stream,
            arguments.group,
            arguments.consumer_id,
            delay=arguments.delay,
            manual=arguments.manual,
            session_timeout=arguments.session_timeout,
        )
    )
