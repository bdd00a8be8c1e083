"""A token bucket: at most ``rate`` events per second on average, in bursts of at most ``capacity``.

The bucket starts full. ``acquire(n)`` takes ``n`` tokens, sleeping until they have accrued; asking
for more than the capacity is allowed (it waits for the whole amount), but a replay never does: it
reads at most ``capacity`` events per batch when it is rate limited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """Rate limiting by tokens that accrue continuously at ``rate`` per second, up to ``capacity``."""

    def __init__(
        self,
        rate: float,
        *,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()

    @property
    def batch_limit(self) -> int:
        """The most events one batch should hold so that delivery stays smooth: one burst."""
        return max(1, int(self.capacity))

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, count: int) -> None:
        """Take ``count`` tokens, waiting for them if the bucket holds fewer."""
        self._refill()
        self._tokens -= count
        if self._tokens < 0:
            await self._sleep(-self._tokens / self.rate)
            self._refill()
