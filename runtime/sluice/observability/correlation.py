"""The correlation id of the work in progress, kept in a context variable.

``with correlation_context("request-42"):`` makes every log record, span and append inside the block
(including tasks started inside it, which copy the context) carry that id. It is the lowest layer of
observability: ``sluice.core.batches`` imports it, so it imports nothing from Sluice but its errors.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from sluice.core.errors import InvalidArgumentError

MAX_CORRELATION_ID_LENGTH = 200

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("sluice_correlation_id", default=None)


def current_correlation_id() -> str | None:
    """The correlation id set by the innermost ``correlation_context``, or None."""
    return _correlation_id.get()


@contextlib.contextmanager
def correlation_context(correlation_id: str | None) -> Iterator[str | None]:
    """Set the correlation id for the block (``None`` clears it); the previous one comes back after it."""
    if correlation_id is not None and (
        not isinstance(correlation_id, str) or not 0 < len(correlation_id) <= MAX_CORRELATION_ID_LENGTH
    ):
        raise InvalidArgumentError(
            f"a correlation id must be 1 to {MAX_CORRELATION_ID_LENGTH} characters, got {correlation_id!r}"
        )
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)
