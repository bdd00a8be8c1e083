"""What a prune deletes, per partition: pure decisions from the limits' cutoffs and the consumer
groups' positions, testable without storage.

A *cutoff* is an offset: every event below it goes. Each limit gives one (``max_age``: the first
offset stored at or after ``now - max_age``; ``max_event_count``: ``head - max_event_count``;
``max_bytes``: see ``RetentionStorage.byte_cutoffs``) and the highest wins, since an event beyond any
one limit is pruned.

A consumer group is *active* when it did something within the activity horizon (7 days by default,
Kafka's offset retention): its creation, a commit, or a heartbeat of a member. A live member
heartbeats every few seconds, so any group with a running member is active, and a group whose
members stopped keeps its events for the horizon after its last commit.

Respect mode (the default) lowers each partition's cutoff to the lowest committed offset of the
active groups, and reports the groups that held events back. Enforce mode keeps the limits' cutoff.
Either way, every group (active or not) whose committed offset ends up below the new start of the
log, with events it never consumed deleted, is a *truncated* group: counted, logged, and told when it
next reads (see ``sluice.services.consumers.truncation``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sluice.store.values.retention import GroupPosition

DEFAULT_ACTIVE_GROUP_HORIZON = timedelta(days=7)
"""A group idle longer than this no longer holds events back (Kafka's offsets.retention default)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionPlan:
    """What to prune in one partition: everything below ``cutoff``."""

    partition: int
    first_offset: int
    head: int
    limit_cutoff: int
    """Where the limits alone would cut."""
    cutoff: int
    """Where this prune cuts (lowered by active groups in respect mode)."""
    held_back_by: tuple[str, ...]
    truncated_groups: tuple[str, ...]

    @property
    def events_to_prune(self) -> int:
        return max(self.cutoff - self.first_offset, 0)


def limit_cutoff(first_offset: int, head: int, cutoffs: Iterable[int | None]) -> int:
    """The highest of the limits' cutoffs, kept within ``[first_offset, head]``."""
    highest = max((cutoff for cutoff in cutoffs if cutoff is not None), default=first_offset)
    return min(max(highest, first_offset), head)


def count_cutoff(head: int, max_event_count: int | None) -> int | None:
    """Keep the newest ``max_event_count`` events of a partition."""
    return None if max_event_count is None else head - max_event_count


def is_active(position: GroupPosition, now: datetime, horizon: timedelta) -> bool:
    return now - position.last_active_at <= horizon


def plan_partition(
    *,
    partition: int,
    first_offset: int,
    head: int,
    limit_cutoff: int,
    groups: Sequence[GroupPosition],
    respect_consumers: bool,
    now: datetime,
    horizon: timedelta = DEFAULT_ACTIVE_GROUP_HORIZON,
) -> PartitionPlan:
    """Decide one partition's cutoff; ``groups`` are the positions of this partition only."""
    active = [position for position in groups if is_active(position, now, horizon)]
    cutoff = limit_cutoff
    held_back_by: tuple[str, ...] = ()
    if respect_consumers:
        holding = [position for position in active if position.committed_offset < limit_cutoff]
        if holding:
            cutoff = max(min(position.committed_offset for position in holding), first_offset)
            held_back_by = tuple(sorted({position.group_id for position in holding}))
    truncated = tuple(
        sorted({position.group_id for position in groups if max(position.committed_offset, first_offset) < cutoff})
    )
    return PartitionPlan(
        partition=partition,
        first_offset=first_offset,
        head=head,
        limit_cutoff=limit_cutoff,
        cutoff=cutoff,
        held_back_by=held_back_by,
        truncated_groups=truncated,
    )
