"""Event replay: re-deliver a stream's events (all or some partitions, from an offset or a time) to a
handler, a consumer group (an offset reset with fencing), or another stream; rate limited, with
progress recorded so that a crashed replay resumes, and cancellable. See docs/replay.md."""

from sluice.services.replay.identity import REPLAYED_FROM_KEY, replayed_event_id
from sluice.services.replay.rate_limit import TokenBucket
from sluice.services.replay.replays import Replays
from sluice.services.replay.targets import ReplayHandler
from sluice.store.values.replays import (
    PartitionProgress,
    ReplayProgress,
    ReplayRequest,
    ReplayState,
    ReplayTargetKind,
)

__all__ = [
    "REPLAYED_FROM_KEY",
    "PartitionProgress",
    "ReplayHandler",
    "ReplayProgress",
    "ReplayRequest",
    "ReplayState",
    "ReplayTargetKind",
    "Replays",
    "TokenBucket",
    "replayed_event_id",
]
