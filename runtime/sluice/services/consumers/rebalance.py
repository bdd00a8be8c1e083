"""The rebalance a heartbeat causes, as a pure function of the group's stored state.

Whichever member heartbeats (under the group's lock) computes the same plan: expire members that
are silent past their session timeout or stuck past their max poll interval, add or refresh the
caller, spread the partitions evenly and stickily over the remaining members, and bump the epoch
of every partition whose owner changes, or whose owner came back as a new instance (a restarted
process with the same consumer id keeps its partitions, and the old process is fenced).

Handoffs are cooperative: a partition owned by a live member is first marked with its next owner;
the owner stops delivering it, commits what it processed and releases it in its next heartbeat,
and only then do owner and epoch change. So a clean rebalance redelivers nothing that was
processed. A partition whose owner is gone (left, expired, stuck) moves at once.

Static membership, as Kafka's group.instance.id: only a *join* (the first heartbeat of a process) may
take over a consumer id held by another instance, and the newest join wins. A later heartbeat from
an instance that was replaced changes nothing (``duplicate``): the backend records it and refuses it
with DuplicateConsumerError, so two live processes sharing one id cannot take the id back and forth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sluice.services.consumers.assignment import assign_partitions
from sluice.store.values.consumer_groups import Assignment, Heartbeat, MemberState, OwnedPartition, PartitionState


@dataclasses.dataclass(frozen=True, slots=True)
class RebalancePlan:
    removed_members: tuple[str, ...]
    caller: MemberState | None
    """The caller's member row to upsert (None when it leaves or is expelled)."""
    partitions: tuple[PartitionState, ...]
    """Every partition with its new owner and epoch."""
    changed: bool
    """Ownership or membership changed: bump the generation and wake the other members."""
    assignment: Assignment
    duplicate: bool = False
    """The caller was replaced by a newer instance with its consumer id: refuse the heartbeat."""


def plan_heartbeat(
    *,
    now: datetime,
    generation: int,
    members: Sequence[MemberState],
    partitions: Sequence[PartitionState],
    heartbeat: Heartbeat,
) -> RebalancePlan:
    stuck = heartbeat.since_last_poll > heartbeat.max_poll_interval
    previous = {member.consumer_id: member for member in members}
    holder = previous.get(heartbeat.consumer_id)
    if holder is not None and holder.instance_id != heartbeat.instance_id and not heartbeat.joining:
        return RebalancePlan(
            removed_members=(),
            caller=None,
            partitions=tuple(partitions),
            changed=False,
            assignment=Assignment(generation=generation, partitions=()),
            duplicate=True,
        )
    removed = [
        member.consumer_id for member in members if member.consumer_id != heartbeat.consumer_id and member.expired(now)
    ]
    caller: MemberState | None = None
    if not (heartbeat.leaving or stuck):
        earlier = previous.get(heartbeat.consumer_id)
        caller = MemberState(
            consumer_id=heartbeat.consumer_id,
            instance_id=heartbeat.instance_id,
            joined_at=earlier.joined_at if earlier else now,
            last_heartbeat_at=now,
            last_poll_at=now - heartbeat.since_last_poll,
            session_timeout=heartbeat.session_timeout,
            max_poll_interval=heartbeat.max_poll_interval,
            duplicates_fenced=earlier.duplicates_fenced if earlier else 0,
            last_duplicate_at=earlier.last_duplicate_at if earlier else None,
        )
    elif heartbeat.consumer_id in previous:
        removed.append(heartbeat.consumer_id)
    remaining = [member.consumer_id for member in members if member.consumer_id not in removed]
    if caller is not None and caller.consumer_id not in remaining:
        remaining.append(caller.consumer_id)
    alive = set(remaining)
    # Stickiness counts a pending handoff as done, so the plan does not change its mind.
    current = {
        state.partition: state.pending_owner
        if state.pending_owner in alive
        else state.owner
        if state.owner in alive
        else None
        for state in partitions
    }
    targets = assign_partitions(len(partitions), remaining, current)
    restarted = (
        caller is not None
        and heartbeat.consumer_id in previous
        and previous[heartbeat.consumer_id].instance_id != heartbeat.instance_id
    )
    planned = []
    changed = bool(removed) or (caller is not None and heartbeat.consumer_id not in previous)
    for state in partitions:
        target = targets[state.partition]
        released = state.owner == heartbeat.consumer_id and state.partition in heartbeat.released
        if state.owner == target:
            new = dataclasses.replace(state, pending_owner=None)
        elif state.owner not in alive or released:
            new = dataclasses.replace(state, owner=target, epoch=state.epoch + 1, pending_owner=None)
        else:  # a live owner hands over cooperatively, after committing what it processed
            new = dataclasses.replace(state, pending_owner=target)
        if restarted and new.owner == heartbeat.consumer_id and new.epoch == state.epoch:
            new = dataclasses.replace(new, epoch=new.epoch + 1)  # fence the previous process
        changed = changed or new.owner != state.owner or new.pending_owner != state.pending_owner
        planned.append(new)
    new_generation = generation + 1 if changed else generation
    owned = tuple(
        OwnedPartition(
            state.partition,
            state.epoch,
            state.committed_offset,
            releasing=state.pending_owner is not None,
        )
        for state in planned
        if caller is not None and state.owner == caller.consumer_id
    )
    return RebalancePlan(
        removed_members=tuple(removed),
        caller=caller,
        partitions=tuple(planned),
        changed=changed,
        assignment=Assignment(
            generation=new_generation,
            partitions=owned,
            expelled=stuck and not heartbeat.leaving,
            replaced_live_instance=restarted and not previous[heartbeat.consumer_id].expired(now),
        ),
    )
