"""Waiting for a wake-up (new events, or a rebalance) with a poll interval behind it."""

from __future__ import annotations

import asyncio


async def wait_either(first: asyncio.Event, second: asyncio.Event, seconds: float) -> None:
    """Wait for either wake-up (new events, or a rebalance) or the poll interval."""
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
