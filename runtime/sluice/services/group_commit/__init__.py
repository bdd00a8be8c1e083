"""Client-side append batching (group commit): concurrent single-event appends share transactions.

``AppendBatcher(store)`` batches appends explicitly; ``batched(store)`` wraps a store so that its
``append`` is batched. Each caller still receives its own offsets and its own errors.
See docs/group-commit.md.
"""

from sluice.services.group_commit.batched_store import BatchedEventStore, batched
from sluice.services.group_commit.batcher import DEFAULT_LINGER, DEFAULT_MAX_BATCH, AppendBatcher
from sluice.services.group_commit.metrics import GroupCommitMetrics, default_group_commit_metrics

__all__ = [
    "DEFAULT_LINGER",
    "DEFAULT_MAX_BATCH",
    "AppendBatcher",
    "BatchedEventStore",
    "GroupCommitMetrics",
    "batched",
    "default_group_commit_metrics",
]
