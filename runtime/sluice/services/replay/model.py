"""What a replay is (``ReplayRequest``) and how far it has come (``ReplayProgress``): the values live in the store
layer (``sluice.store.values.replays``), since the storage port names them; this module keeps the import path
the doors, the operator and users' code use.
"""

from sluice.store.values.replays import (
    MAXIMUM_BATCH_SIZE,
    REPLAY_NAME_PATTERN,
    PartitionProgress,
    ReplayProgress,
    ReplayRequest,
    ReplayState,
    ReplayTargetKind,
    validate_replay_name,
)

__all__ = [
    "MAXIMUM_BATCH_SIZE",
    "REPLAY_NAME_PATTERN",
    "PartitionProgress",
    "ReplayProgress",
    "ReplayRequest",
    "ReplayState",
    "ReplayTargetKind",
    "validate_replay_name",
]
