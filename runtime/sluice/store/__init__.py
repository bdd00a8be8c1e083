"""The store layer: the storage port (``port.py``), the ``Backend`` bundle an adapter hands out
(``backend.py``) and the ``EventStore`` facade users hold (``event_store.py``, with its queue half in
``queue_operations.py`` and its limits in ``limits.py``); the values the port names (``values/``), the
storage contracts that check their own arguments (``contracts/``), the connection type of the adapter's
SQL database (``sql_connection.py``), the ``-- name:`` SQL reader (``named_sql.py``) and waiting for a
stream to appear (``stream_wait.py``).

``from sluice.store import EventStore`` is the way in; this package never imports an adapter
(``sluice.storage``), only ``sluice.connect`` picks one. Nor does it import a service: what
``EventStore.consumer_groups()`` returns is typed by the protocols of ``contracts/consumer_groups.py`` and
built by the ``ConsumerGroupsFactory`` the store is given (``sluice.connect`` gives it the consumer-group
service).
"""

from sluice.store.backend import Backend
from sluice.store.event_store import ConsumerGroupsFactory, EventStore
from sluice.store.limits import DEFAULT_VISIBILITY_TIMEOUT, MAX_BATCH_EVENTS, MAX_PARTITIONS
from sluice.store.port import AppendRequest, BackendCheck

__all__ = [
    "DEFAULT_VISIBILITY_TIMEOUT",
    "MAX_BATCH_EVENTS",
    "MAX_PARTITIONS",
    "AppendRequest",
    "Backend",
    "BackendCheck",
    "ConsumerGroupsFactory",
    "EventStore",
]
