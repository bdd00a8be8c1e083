"""Delivering one event with bounded retries, waiting between attempts as a RetryPolicy says.

A delivery is any coroutine function that raises when the event was not accepted. The outcome says
whether it got through, how many attempts it took and when they happened, so that an event that
never got through can be dead-lettered with its history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sluice.services.retries.policy import RetryPolicy

logger = logging.getLogger(__name__)

EventT = TypeVar("EventT")
Delivery = Callable[[EventT, int], Awaitable[None]]
"""Delivers an event (given with its attempt number, from 1); raises if it was not accepted."""


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one event: delivered, given up on (``error`` holds the last failure), or
    abandoned because the worker is stopping (neither delivered nor dead-lettered: it is redelivered).

    ``waits`` are the seconds slept between attempts (one fewer than the attempts, unless abandoned)."""

    attempts: int
    first_attempt_at: datetime
    last_attempt_at: datetime
    error: str | None = None
    abandoned: bool = False
    first_failure_at: datetime | None = None
    last_failure_at: datetime | None = None
    waits: tuple[float, ...] = ()

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
    """Try ``delivery(event)`` up to ``policy.max_attempts`` times, waiting ``policy.delay_after(n)``
    after the n-th failure. Any Exception counts as a failed attempt. A set ``stopping`` event cuts
    the wait short: the outcome is then ``abandoned``."""
    first_attempt_at = datetime.now(UTC)
    last_attempt_at = first_attempt_at
    first_failure_at: datetime | None = None
    last_failure_at: datetime | None = None
    error_text = ""
    waits: list[float] = []
    attempt = 0
    while attempt < policy.max_attempts:
        attempt += 1
        last_attempt_at = datetime.now(UTC)
        try:
            await delivery(event, attempt)
        except Exception as error:  # user handlers and sinks may fail in any way
            last_failure_at = datetime.now(UTC)
            first_failure_at = first_failure_at or last_failure_at
            error_text = f"{type(error).__name__}: {error}"
            logger.warning(
                "delivery of %s failed (attempt %d of %d): %s", describe, attempt, policy.max_attempts, error_text
            )
        else:
            return DeliveryOutcome(
                attempts=attempt,
                first_attempt_at=first_attempt_at,
                last_attempt_at=last_attempt_at,
                first_failure_at=first_failure_at,
                last_failure_at=last_failure_at,
                waits=tuple(waits),
            )
        if attempt == policy.max_attempts:
            break
        wait = policy.delay_after(attempt)
        if await _stopped_while_waiting(stopping, wait):
            return DeliveryOutcome(
                attempts=attempt,
                first_attempt_at=first_attempt_at,
                last_attempt_at=last_attempt_at,
                error=error_text,
                abandoned=True,
                first_failure_at=first_failure_at,
                last_failure_at=last_failure_at,
                waits=tuple(waits),
            )
        waits.append(wait)
    return DeliveryOutcome(
        attempts=attempt,
        first_attempt_at=first_attempt_at,
        last_attempt_at=last_attempt_at,
        error=error_text,
        first_failure_at=first_failure_at,
        last_failure_at=last_failure_at,
        waits=tuple(waits),
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
