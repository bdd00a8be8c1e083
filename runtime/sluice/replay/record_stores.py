"""Which replay records a store uses: its PostgreSQL tables, or in-memory records that live with a
``memory://`` store. The one place in ``sluice.replay`` that picks an implementation, so the interface
(``records.py``) and the PostgreSQL records never import each other.
"""

from __future__ import annotations

import weakref

from sluice.replay.records import MemoryReplayRecords, ReplayRecords
from sluice.store import EventStore

_memory_records: weakref.WeakKeyDictionary[EventStore, MemoryReplayRecords] = weakref.WeakKeyDictionary()


def replay_records(store: EventStore) -> ReplayRecords:
    """The replay records of ``store``: its PostgreSQL tables, or memory that lives with the store."""
    from sluice.backends.postgres.store import PostgresEventStore  # noqa: PLC0415  (asyncpg only when used)

    if isinstance(store, PostgresEventStore):
        from sluice.backends.postgres.replays import PostgresReplayRecords  # noqa: PLC0415

        return PostgresReplayRecords(store)
    records = _memory_records.get(store)
    if records is None:
        records = _memory_records[store] = MemoryReplayRecords()
    return records
