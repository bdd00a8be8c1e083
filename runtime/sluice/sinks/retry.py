"""Delivering one event with bounded retries: exponential backoff with full jitter between attempts.

A delivery is any coroutine function that raises when the event was not accepted. The outcome says
whether it got through, how many attempts it took and when they happened, so that an event that
never got through can be dead-lettered with its history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sluice.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

EventT = TypeVar("EventT")
Delivery = Callable[[EventT, int], Awaitable[None]]
"""Delivers an event (given with its attempt number, from 1); raises if it was not accepted."""


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry. The wait before attempt ``n + 1`` is drawn uniformly
    from ``[0, min(max_backoff, initial_backoff * 2 ** (n - 1))]`` seconds (full jitter), so many
    workers failing at once do not retry in lockstep."""

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidArgumentError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise InvalidArgumentError(
                f"backoff must satisfy 0 <= initial ({self.initial_backoff}) <= max ({self.max_backoff})"
            )

    def backoff_ceiling(self, failed_attempts: int) -> float:
        """The longest wait after ``failed_attempts`` failures (the jitter draws below it)."""
        return float(min(self.max_backoff, self.initial_backoff * 2 ** (failed_attempts - 1)))

    def backoff(self, failed_attempts: int) -> float:
        """A jittered wait after ``failed_attempts`` failures."""
        return random.uniform(0.0, self.backoff_ceiling(failed_attempts))


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one event: delivered, given up on (``error`` holds the last failure), or
    abandoned because the worker is stopping (neither delivered nor dead-lettered: it is redelivered)."""

    attempts: int
    first_attempt_at: datetime
    last_attempt_at: datetime
    error: str | None = None
    abandoned: bool = False

    @property
    def delivered(self) -> bool:
        return self.error is None and not self.abandoned


async def deliver_with_retries(
    delivery: Delivery[EventT],
    event: EventT,
    policy: RetryPolicy,
    *,
    stopping: asyncio.Event | None = None,
    describe: str = "event",
) -> DeliveryOutcome:
    """Try ``delivery(event)`` up to ``policy.max_attempts`` times. Any Exception counts as a failed
    attempt. A set ``stopping`` event cuts the backoff short: the outcome is then ``abandoned``."""
    first_attempt_at = datetime.now(UTC)
    error_text = ""
    for attempt in range(1, policy.max_attempts + 1):
        last_attempt_at = datetime.now(UTC)
        try:
            await delivery(event, attempt)
        except Exception as error:  # user handlers and sinks may fail in any way
            error_text = f"{type(error).__name__}: {error}"
            logger.warning(
                "delivery of %s failed (attempt %d of %d): %s", describe, attempt, policy.max_attempts, error_text
            )
        else:
            return DeliveryOutcome(attempts=attempt, first_attempt_at=first_attempt_at, last_attempt_at=last_attempt_at)
        if attempt == policy.max_attempts:
            break
        if await _stopped_while_waiting(stopping, policy.backoff(attempt)):
            return DeliveryOutcome(
                attempts=attempt,
                first_attempt_at=first_attempt_at,
                last_attempt_at=last_attempt_at,
                error=error_text,
                abandoned=True,
            )
    return DeliveryOutcome(
        attempts=policy.max_attempts,
        first_attempt_at=first_attempt_at,
        last_attempt_at=last_attempt_at,
        error=error_text,
    )


async def _stopped_while_waiting(stopping: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``; return True at once if ``stopping`` is (or becomes) set."""
    if stopping is None:
        await asyncio.sleep(seconds)
        return False
    if stopping.is_set():
        return True
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
