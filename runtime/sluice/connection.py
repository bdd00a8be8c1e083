"""``connect(url)``: the one way to open a store; the URL scheme picks the backend.

It is where a store is put together: the adapter the scheme names builds the storage, and the store is given
the consumer-group service (``ConsumerGroupService``), which the store layer below the services knows only by
its protocol (``sluice.store.contracts.consumer_groups``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sluice.core.errors import InvalidArgumentError
from sluice.core.event_types import EventTypeRegistry
from sluice.core.options import StoreOptions
from sluice.services.consumers.reader import ConsumerGroupService
from sluice.store import EventStore

POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})


async def connect(url: str, *, registry: EventTypeRegistry | None = None, **options: Any) -> EventStore:
    """Open a store: ``memory://`` for the in-memory backend, ``postgresql://...`` for PostgreSQL.

    ``options`` are the fields of StoreOptions (schema_name, max_payload_bytes, poll_interval,
    auto_create_streams, migrate, ...). Use the store with ``async with`` or call ``close()``.
    """
    store_options = StoreOptions(**options)
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from sluice.storage.memory.store import MemoryEventStore  # noqa: PLC0415  (import only the backend used)

        return MemoryEventStore(store_options, registry, consumer_groups_factory=ConsumerGroupService)
    if scheme in POSTGRES_SCHEMES:
        from sluice.storage.postgres.store import PostgresEventStore  # noqa: PLC0415

        return await PostgresEventStore.open(url, store_options, registry, consumer_groups_factory=ConsumerGroupService)
    raise InvalidArgumentError(f"unsupported store URL {url!r}: use memory:// or postgresql://")
