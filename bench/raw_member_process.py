"""One raw asyncpg worker as its own process: the baseline of the multi-process consume benchmark.

    python -m bench.raw_member_process DSN STREAM GROUP_KEY PARTITIONS(comma-separated)

Connects, prints ``ready``, waits for a line on stdin, pages through its partitions committing each page
(as ``bench.consumer_groups.raw_consume_partitions`` does in process), then prints the events it read.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from bench.consumer_groups import raw_consume_partitions
from bench.runtime_core import stream_id


async def main(dsn: str, stream: str, group_key: str, partitions: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        stream_key = await stream_id(connection, stream)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        count = await raw_consume_partitions(
            connection, stream_key, int(group_key), [int(partition) for partition in partitions.split(",")]
        )
        print(count, flush=True)
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
