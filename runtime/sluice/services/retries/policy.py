"""The retry policy of a consumer group on a stream: how many attempts, how long to wait between
them (fixed or exponential backoff, with jitter, between a minimum and a maximum delay), and where
events go that used up their attempts (a dead-letter stream, by default
``<stream>.<group>.dead-letter``).

Pure logic: no I/O. The worker behind ``sluice consume`` uses it, and so can any library user of
consumer groups (with ``sluice.services.retries.deliver_with_retries``).
"""

from __future__ import annotations

import dataclasses
import enum
import random

from sluice.core.errors import InvalidArgumentError
from sluice.core.names import validate_stream_name

DEAD_LETTER_STREAM_SUFFIX = ".dead-letter"


class Backoff(enum.Enum):
    """How the wait grows between attempts."""

    FIXED = "fixed"
    """The same wait before every retry: ``delay`` (jittered, see RetryPolicy)."""
    EXPONENTIAL = "exponential"
    """``delay``, then twice that, four times, ... capped at ``max_delay``."""


def default_dead_letter_stream(stream_name: str, group_id: str) -> str:
    """``<stream>.<group>.dead-letter``, validated (InvalidNameError if it would be too long)."""
    return validate_stream_name(f"{stream_name}.{group_id}{DEAD_LETTER_STREAM_SUFFIX}")


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one consumer group on one stream.

    The wait before attempt ``n + 1`` (after ``n`` failures) has a ceiling: ``delay`` for FIXED,
    ``min(max_delay, delay * 2 ** (n - 1))`` for EXPONENTIAL. With ``jitter`` (the default) the wait
    is drawn uniformly from ``[min_delay, ceiling]`` ("full jitter" when ``min_delay`` is 0), so many
    workers failing at once do not retry in lockstep; without it the wait is the ceiling.

    ``dead_letter_stream`` None means the default, ``<stream>.<group>.dead-letter``.
    """

    max_attempts: int = 5
    backoff: Backoff = Backoff.EXPONENTIAL
    delay: float = 0.2
    """Seconds: the fixed wait, or the first retry's ceiling (exponential)."""
    max_delay: float = 10.0
    """Seconds: the exponential ceiling never grows above this."""
    min_delay: float = 0.0
    """Seconds: jitter never draws a wait below this."""
    jitter: bool = True
    dead_letter_stream: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise InvalidArgumentError(f"max_attempts must be an integer of at least 1, got {self.max_attempts!r}")
        if not isinstance(self.backoff, Backoff):
            raise InvalidArgumentError(f"backoff must be a Backoff (fixed or exponential), got {self.backoff!r}")
        if not 0 <= self.min_delay <= self.delay <= self.max_delay:
            raise InvalidArgumentError(
                "retry delays must satisfy 0 <= min_delay <= delay <= max_delay, got "
                f"min_delay={self.min_delay}, delay={self.delay}, max_delay={self.max_delay}"
            )
        if self.dead_letter_stream is not None:
            validate_stream_name(self.dead_letter_stream)

    def dead_letter_stream_for(self, stream_name: str, group_id: str) -> str:
        """Where this group's dead letters of ``stream_name`` are appended."""
        if self.dead_letter_stream is not None:
            return self.dead_letter_stream
        return default_dead_letter_stream(stream_name, group_id)

    def delay_ceiling(self, failed_attempts: int) -> float:
        """The longest wait after ``failed_attempts`` failures (jitter draws at or below it)."""
        if failed_attempts < 1:
            raise InvalidArgumentError(f"failed_attempts must be at least 1, got {failed_attempts}")
        if self.backoff is Backoff.FIXED:
            return float(self.delay)
        exponent = min(failed_attempts - 1, 62)  # 2 ** 62 seconds is past any max_delay
        return float(min(self.max_delay, self.delay * 2**exponent))

    def delay_after(self, failed_attempts: int) -> float:
        """The wait after ``failed_attempts`` failures, jittered unless ``jitter`` is off."""
        ceiling = self.delay_ceiling(failed_attempts)
        if not self.jitter:
            return ceiling
        return random.uniform(min(self.min_delay, ceiling), ceiling)
