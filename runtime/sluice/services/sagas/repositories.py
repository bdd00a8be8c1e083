"""Which saga repository a store uses: the one its storage adapter built (its PostgreSQL tables, or one
in-memory repository per ``memory://`` store), ``store.backend.sagas``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.store import EventStore
    from sluice.store.contracts.sagas import SagaRepository


def saga_repository(store: EventStore) -> SagaRepository:
    """The saga repository that lives beside ``store``, shared by everything that uses that store."""
    return store.backend.sagas
