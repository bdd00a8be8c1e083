"""Which replay records a store uses: the ones its storage adapter built (its PostgreSQL tables, or
in-memory records that live with a ``memory://`` store), ``store.backend.replays``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.store import EventStore
    from sluice.store.contracts.replays import ReplayRecords


def replay_records(store: EventStore) -> ReplayRecords:
    """The replay records of ``store``."""
    return store.backend.replays
