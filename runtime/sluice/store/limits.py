"""The limits the EventStore facade enforces on every call, whatever the adapter: events per append or
enqueue, partitions per stream, and the default lease of a dequeued message."""

from __future__ import annotations

from datetime import timedelta

DEFAULT_VISIBILITY_TIMEOUT = timedelta(seconds=30)
MAX_BATCH_EVENTS = 10_000
MAX_PARTITIONS = 1024
