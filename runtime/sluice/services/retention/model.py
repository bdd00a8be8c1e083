"""What retention is configured with and what it reports (limits, cleanup windows, policies, prune reports): the
values live in the store layer (``sluice.store.values.retention``), since the storage port names them; this
module keeps the import path the doors, the operator and users' code use.
"""

from sluice.store.values.retention import (
    DEFAULT_CLEANUP_INTERVAL,
    CleanupWindow,
    DeletedBatch,
    GroupPosition,
    PruneReport,
    RetentionLimits,
    RetentionPolicy,
    parse_time_of_day,
)

__all__ = [
    "DEFAULT_CLEANUP_INTERVAL",
    "CleanupWindow",
    "DeletedBatch",
    "GroupPosition",
    "PruneReport",
    "RetentionLimits",
    "RetentionPolicy",
    "parse_time_of_day",
]
