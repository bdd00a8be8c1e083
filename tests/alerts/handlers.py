"""A handler for the `sluice consume` worker the metric-name test runs: accepts every event."""

from __future__ import annotations

from sluice import ConsumedEvent


async def accept(event: ConsumedEvent) -> None:
    del event
