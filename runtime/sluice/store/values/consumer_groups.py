"""What the storage of consumer groups holds and returns: members, partitions, assignments, lag."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta


@dataclasses.dataclass(frozen=True, slots=True)
class MemberState:
    """A member as the group stores it."""

    consumer_id: str
    instance_id: str
    joined_at: datetime
    last_heartbeat_at: datetime
    last_poll_at: datetime
    session_timeout: timedelta
    max_poll_interval: timedelta
    duplicates_fenced: int = 0
    """Times a process with this consumer id heartbeated after a newer one had joined with the same id
    (two live processes sharing one id); each such process was fenced for good."""
    last_duplicate_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """Silent past its session timeout, or stuck (not polling) past its max poll interval."""
        return now - self.last_heartbeat_at > self.session_timeout or now - self.last_poll_at > self.max_poll_interval


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionState:
    """A partition as the group stores it: its committed offset (the next to read), its owner and
    the epoch of that ownership. Every change of owner bumps the epoch, which fences commits."""

    partition: int
    committed_offset: int
    owner: str | None
    epoch: int
    pending_owner: str | None = None
    """Set while a live owner is asked to hand the partition over: it stops delivering, commits
    what it processed, and releases it; only then do owner and epoch change."""


@dataclasses.dataclass(frozen=True, slots=True)
class Heartbeat:
    """A member saying it is alive (or leaving)."""

    consumer_id: str
    instance_id: str
    session_timeout: timedelta
    max_poll_interval: timedelta
    since_last_poll: timedelta
    leaving: bool = False
    released: tuple[int, ...] = ()
    """Partitions this member was asked to hand over and has committed and stopped delivering."""
    joining: bool = False
    """The first heartbeat of this process (instance). Only a join may take over a consumer id held by
    another instance (static membership: the newest join wins); a later heartbeat from an instance
    that was replaced is refused with DuplicateConsumerError."""


@dataclasses.dataclass(frozen=True, slots=True)
class OwnedPartition:
    partition: int
    epoch: int
    committed_offset: int
    releasing: bool = False
    """The group wants this partition elsewhere: stop delivering it, commit it and release it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    """What a heartbeat answers: the partitions this member owns now, with their epochs."""

    generation: int
    partitions: tuple[OwnedPartition, ...]
    expelled: bool = False
    """The member was stuck past its max poll interval and lost everything; it rejoins on its next poll."""
    partition_epochs: tuple[tuple[int, int], ...] = ()
    """QUEUE delivery: (partition, epoch) of every partition; claims of an older epoch were dropped by a reset."""
    replaced_live_instance: bool = False
    """This join took the consumer id over from another instance whose session had not expired: a
    restart, or a second process with the same id (which is fenced at its next heartbeat)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionCommit:
    partition: int
    epoch: int
    offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """QUEUE delivery: offsets ``from_offset`` to ``to_offset - 1`` of a partition, leased to one
    member. ``attempt`` grows with every takeover; acknowledgements must name it (fencing)."""

    claim_id: int
    attempt: int
    partition: int
    from_offset: int
    to_offset: int
    epoch: int = 0
    """The partition's epoch when claimed; a forced reset bumps it (and drops every claim)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimAcknowledgement:
    """QUEUE delivery: the events of a claim before ``up_to`` are processed (all of them when
    ``up_to`` is the claim's ``to_offset``)."""

    claim_id: int
    attempt: int
    partition: int
    up_to: int


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a group: the committed offset, the head, and how far behind it is."""

    partition: int
    committed_offset: int
    head: int
    owner: str | None
    epoch: int
    oldest_unconsumed_at: datetime | None
    observed_at: datetime

    @property
    def lag_events(self) -> int:
        return max(self.head - self.committed_offset, 0)

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest event not yet committed; 0 when caught up."""
        if self.oldest_unconsumed_at is None or self.lag_events == 0:
            return 0.0
        return max((self.observed_at - self.oldest_unconsumed_at).total_seconds(), 0.0)


@dataclasses.dataclass(frozen=True, slots=True)
class MemberDescription:
    consumer_id: str
    joined_at: datetime
    last_heartbeat_at: datetime
    partitions: tuple[int, ...]
    active: bool
    instance_id: str = ""
    """The process (instance) that holds this consumer id now."""
    duplicates_fenced: int = 0
    """Processes with this consumer id that were fenced because a newer one joined with the same id:
    more than zero means two live processes share this id (give each its own)."""
    last_duplicate_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GroupDescription:
    """A group with its members, assignments, committed offsets and lag per partition."""

    stream_name: str
    group_id: str
    generation: int
    created_at: datetime
    members: tuple[MemberDescription, ...]
    partitions: tuple[PartitionLag, ...]

    @property
    def lag_events(self) -> int:
        return sum(partition.lag_events for partition in self.partitions)

    @property
    def lag_seconds(self) -> float:
        return max((partition.lag_seconds for partition in self.partitions), default=0.0)

    @property
    def active_members(self) -> tuple[MemberDescription, ...]:
        return tuple(member for member in self.members if member.active)


@dataclasses.dataclass(frozen=True, slots=True)
class GroupSummary:
    stream_name: str
    group_id: str
    members: int
    lag_events: int
