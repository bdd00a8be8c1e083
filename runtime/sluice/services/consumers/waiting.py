"""Waiting for a wake-up (new events, a rebalance, a new assignment) with a poll interval behind it."""

from __future__ import annotations

import asyncio


async def wait_either(*wake_ups: asyncio.Event, seconds: float) -> None:
    """Wait for any of the wake-ups (new events, a rebalance, ...) or the poll interval."""
    waiters = [asyncio.ensure_future(wake_up.wait()) for wake_up in wake_ups]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
