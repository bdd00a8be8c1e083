"""How retention finds its storage for a store: the part its storage adapter built,
``store.backend.retention`` (the interface is ``sluice.store.port.RetentionStorage``).

Everything else retention needs (partition bounds, the offset at a time) is the store's and its
stream log's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.store import EventStore
    from sluice.store.port import RetentionStorage


def storage_of(store: EventStore) -> RetentionStorage:
    """The retention storage of ``store``."""
    return store.backend.retention
