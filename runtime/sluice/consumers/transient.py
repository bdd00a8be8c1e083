"""Which failures a consumer-group member waits out, and how long it waits between attempts.

A member (and the ``sluice consume`` worker) must outlive its database: a restart (``the database
system is starting up``), a crash, too many connections, a lost connection, a statement cancelled by
an administrator. Those are *transient*: the member retries with exponential backoff and jitter and
resumes by itself. Everything else (the stream was deleted, this member was fenced for good, a bug)
is not, and ends the consumption with that error.

The backends translate driver errors into ``sluice.errors`` (the unavailable category); raw
asyncpg and OS errors are classified too, so that a driver error a backend does not translate yet
is still waited out rather than ending a worker.
"""

from __future__ import annotations

import dataclasses
import random

import asyncpg

from sluice import errors
from sluice.errors import ConnectionLostError, SluiceError, StoreClosedError

_UNAVAILABLE: type[SluiceError] = getattr(errors, "UnavailableError", ConnectionLostError)
"""The unavailable category (ConnectionLostError before the categories existed)."""

_TRANSIENT_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: cannot connect, connection lost
    asyncpg.exceptions.OperatorInterventionError,  # class 57: starting up, shutting down, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, out of memory
    asyncpg.exceptions.TransactionRollbackError,  # class 40: deadlock, serialization failure
    asyncpg.InterfaceError,  # the client's side of a broken connection ("connection is closed")
    asyncpg.exceptions.InternalClientError,
    OSError,  # refused, reset, unreachable
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth waiting out: the database is away, busy or restarting."""
    if isinstance(error, StoreClosedError):
        return False  # closed on purpose: nothing will bring it back
    if isinstance(error, SluiceError):
        return isinstance(error, _UNAVAILABLE | ConnectionLostError)
    return isinstance(error, _TRANSIENT_DRIVER_ERRORS)


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
