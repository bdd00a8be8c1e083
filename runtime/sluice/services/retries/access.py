"""``group_dead_letters(store)``: the GroupDeadLetters of a store, PostgreSQL or in memory.

Each storage adapter builds one per store (``store.backend.dead_letters``): the in-memory one holds the
dead letters themselves, and every caller of one store must see the same ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.store import EventStore
    from sluice.store.contracts.dead_letters import GroupDeadLetters


def group_dead_letters(store: EventStore) -> GroupDeadLetters:
    """The dead letters of ``store``'s consumer groups."""
    return store.backend.dead_letters
