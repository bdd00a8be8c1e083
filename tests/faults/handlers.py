"""The handler ``sluice consume --handler tests.faults.handlers:record`` runs in the fault tests: it
works a little on each event, then records it (consumer, partition, offset, sequence number, wall-clock
time) as one JSON line in the file named by FAULTS_RECORD, so the test knows what was processed and when."""

from __future__ import annotations

import asyncio
import json
import os
import time

from sluice import ConsumedEvent

WORK_SECONDS = float(os.environ.get("FAULTS_WORK_SECONDS", "0.01"))


async def record(event: ConsumedEvent) -> None:
    await asyncio.sleep(WORK_SECONDS)
    line = {
        "consumer": os.environ.get("FAULTS_CONSUMER", "?"),
        "partition": event.partition,
        "offset": event.offset,
        "seq": event.data["seq"] if isinstance(event.data, dict) else None,
        "at": time.time(),
    }
    _append_line(json.dumps(line))


def _append_line(line: str) -> None:
    """One short write in append mode: lines of concurrent writers never interleave."""
    with open(os.environ["FAULTS_RECORD"], "a", encoding="utf-8") as records:
        records.write(line + "\n")
