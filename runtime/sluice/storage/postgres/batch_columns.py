"""A batch's columns as the append and enqueue statements take them: a column whose values are all equal goes
as a one-element array, and the statement spreads it back to the batch's length.

asyncpg encodes an array element by element, and checks each element against ``collections.abc.Iterable``
(a nested array?) in Python-level ``isinstance`` calls. Most columns of a batch hold one value throughout (the
event type of a batch of one kind, schema version 1, ``application/json``, metadata ``{}``, no correlation id or
dedupe key), so sending those once halves the client's CPU per message of an enqueue of 100 (300 -> 150 µs per
call, docs/performance.md).

The statements (``append_events``, ``enqueue_messages`` in sql/queries.sql) read a one-element column of a
batch of ``n`` rows as ``array_fill(column[1], ARRAY[n])``, where ``n`` is the length of the payload column,
which is always sent whole. A batch of one row is the same either way, and a column sent whole is used as it
is, so a caller that sends every column whole (an earlier version) is still right.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sluice.core.prepared_batches import PreparedBatch

__all__ = ["event_arrays", "uniform_column"]

T = TypeVar("T")


def uniform_column(column: list[T]) -> list[T]:
    """``column`` as a statement takes it: two or more equal values as a list of the first one, any other
    column as it is. (Equal, not identical: the columns hold str, int or None, and the values are
    validated before they get here, so ``True == 1`` cannot make a schema version of a bool.)"""
    if len(column) > 1 and column.count(column[0]) == len(column):
        return column[:1]
    return column


def event_arrays(events: PreparedBatch) -> tuple[list[Any], ...]:
    """A batch as the arrays ``append_events`` takes after its four scalars (``enqueue_messages`` all but the
    event ids): event ids and payloads whole, the other columns as ``uniform_column`` leaves them."""
    return (
        events.event_ids,
        uniform_column(events.event_types),
        uniform_column(events.schema_versions),
        uniform_column(events.content_types),
        events.payloads,
        uniform_column(events.metadata),
    )
