"""``group_dead_letters(store)``: the GroupDeadLetters of a store, PostgreSQL or in memory.

One instance per store (kept in a weak dictionary, so it goes with the store): the in-memory one
holds the dead letters themselves, and every caller of one store must see the same ones.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from sluice.errors import InvalidArgumentError
from sluice.retries.repository import GroupDeadLetters

if TYPE_CHECKING:
    from sluice.store import EventStore

_BY_STORE: weakref.WeakKeyDictionary[EventStore, GroupDeadLetters] = weakref.WeakKeyDictionary()


def group_dead_letters(store: EventStore) -> GroupDeadLetters:
    """The dead letters of ``store``'s consumer groups."""
    found = _BY_STORE.get(store)
    if found is None:
        found = _BY_STORE[store] = _open(store)
    return found


def _open(store: EventStore) -> GroupDeadLetters:
    # Imported here: only the backend in use is loaded (asyncpg stays out of memory-only programs).
    from sluice.backends.memory import MemoryEventStore  # noqa: PLC0415

    if isinstance(store, MemoryEventStore):
        from sluice.retries.memory import MemoryGroupDeadLetters  # noqa: PLC0415

        return MemoryGroupDeadLetters(store)
    from sluice.backends.postgres.store import PostgresEventStore  # noqa: PLC0415

    if isinstance(store, PostgresEventStore):
        from sluice.backends.postgres.group_dead_letters import PostgresGroupDeadLetters  # noqa: PLC0415

        return PostgresGroupDeadLetters(store)
    raise InvalidArgumentError(f"consumer-group dead letters are not supported by {type(store).__name__}")
