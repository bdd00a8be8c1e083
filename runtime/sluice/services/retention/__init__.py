"""Retention: delete old events on purpose, never by accident (docs/retention.md).

- ``prune_stream(store, stream, limits)``: apply limits to one stream now (the operator's entry point);
- ``set_policy`` / ``list_policies`` / ``delete_policy`` / ``policy_for``: stored policies by name pattern;
- ``apply_policies(store)``: prune every stream by its most specific policy;
- ``RetentionWorker``: apply the policies in the background of a long-running process.
"""

from __future__ import annotations

from sluice.services.retention.applying import apply_policies
from sluice.services.retention.planning import DEFAULT_ACTIVE_GROUP_HORIZON
from sluice.services.retention.policies import delete_policy, list_policies, policy_for, set_policy
from sluice.services.retention.pruning import DEFAULT_BATCH_SIZE, prune_stream
from sluice.services.retention.worker import RetentionWorker
from sluice.store.values.retention import CleanupWindow, PruneReport, RetentionLimits, RetentionPolicy

__all__ = [
    "DEFAULT_ACTIVE_GROUP_HORIZON",
    "DEFAULT_BATCH_SIZE",
    "CleanupWindow",
    "PruneReport",
    "RetentionLimits",
    "RetentionPolicy",
    "RetentionWorker",
    "apply_policies",
    "delete_policy",
    "list_policies",
    "policy_for",
    "prune_stream",
    "set_policy",
]
