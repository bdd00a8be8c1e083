"""Handlers that ``sluice consume --handler tests.cli.handlers:...`` runs in the CLI tests. They
record each event as a JSON line in the file named by SLUICE_TEST_HANDLER_RECORD."""

from __future__ import annotations

import json
import os

from sluice import ConsumedEvent


def _record(event: ConsumedEvent, how: str) -> None:
    line = {"how": how, "partition": event.partition, "offset": event.offset, "data": event.data}
    with open(os.environ["SLUICE_TEST_HANDLER_RECORD"], "a", encoding="utf-8") as record:
        record.write(json.dumps(line) + "\n")


async def record_or_fail(event: ConsumedEvent) -> None:
    """Record the event; fail (every time) for events whose data says ``"fail": true``."""
    if isinstance(event.data, dict) and event.data.get("fail"):
        raise RuntimeError(f"refusing event {event.offset}")
    _record(event, "async")


def record_sync(event: ConsumedEvent) -> None:
    _record(event, "sync")
