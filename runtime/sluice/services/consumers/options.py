"""How a consumer-group member consumes (commit strategy, batch size, timeouts, start position): the values live in
the store layer (``sluice.store.values.consumer_group_options``), since the storage port names them; this module
keeps the import path the doors, the operator and users' code use.
"""

from sluice.store.values.consumer_group_options import (
    ConsumerGroupOptions,
    OffsetCommitStrategy,
    StartFrom,
    StartPosition,
    TruncationPolicy,
)

__all__ = [
    "ConsumerGroupOptions",
    "OffsetCommitStrategy",
    "StartFrom",
    "StartPosition",
    "TruncationPolicy",
]
