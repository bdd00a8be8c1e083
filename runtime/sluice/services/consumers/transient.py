"""Which failures a consumer-group member waits out, and how long it waits between attempts.

A member (and the ``sluice consume`` worker) must outlive its database: a restart (``the database
system is starting up``), a crash, too many connections, a lost connection, a statement cancelled by
an administrator. Those are *transient*: the member retries with exponential backoff and jitter and
resumes by itself. Everything else (the stream was deleted, this member was fenced for good, a bug)
is not, and ends the consumption with that error.

The backends translate every driver error into ``sluice.core.errors`` (docs/errors.md), so this module
knows no driver: the unavailable category is transient (except a store closed on purpose), and so
are a socket error or a timeout of the caller's own.
"""

from __future__ import annotations

import dataclasses
import random

from sluice.core.errors import SluiceError, StoreClosedError, UnavailableError


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth waiting out: the database is away, busy or restarting."""
    if isinstance(error, StoreClosedError):
        return False  # closed on purpose: nothing will bring it back
    if isinstance(error, SluiceError):
        return isinstance(error, UnavailableError)
    return isinstance(error, OSError | TimeoutError)  # refused, reset, unreachable; no answer in time


@dataclasses.dataclass(slots=True)
class RetryBackoff:
    """Exponential backoff with full jitter between ``initial`` and ``maximum`` seconds; ``reset``
    after a success. ``failures`` counts the attempts that failed in a row."""

    initial: float = 0.1
    maximum: float = 5.0
    failures: int = 0

    def next_delay(self) -> float:
        """The pause before the next attempt (and count this failure)."""
        self.failures += 1
        ceiling = min(self.maximum, self.initial * 2 ** min(self.failures - 1, 30))
        return random.uniform(ceiling / 2, ceiling)  # jitter, not cryptography

    def reset(self) -> None:
        self.failures = 0
