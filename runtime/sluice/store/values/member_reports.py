"""What a consumer-group member reports about itself: its counters (``MemberStats``), whether it is consuming
(``MemberHealth``) and the truncations it found (``Truncation``).

``consumption.stats``, ``.health`` and ``.truncations`` hand them out (``store.contracts.consumer_groups``);
the consumer-group service (``sluice.services.consumers``) fills them in.
"""

from __future__ import annotations

import dataclasses

from sluice.store.values.consumer_group_options import TruncationPolicy


@dataclasses.dataclass(slots=True)
class MemberStats:
    """Counters of one member, for tests, metrics and the curious."""

    delivered: int = 0
    commits: int = 0
    committed_events: int = 0
    rebalances: int = 0
    fenced: int = 0
    truncations: int = 0
    """Times retention had pruned events the group had not consumed (see ``Truncation``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class MemberHealth:
    """Whether a member is consuming (what the readiness of a worker reports) and why not."""

    ready: bool
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Truncation:
    """Events of one partition that were pruned before the group consumed them
    (``sluice.services.consumers.truncation`` says how a member finds and handles them)."""

    stream_name: str
    group_id: str
    partition: int
    expected_offset: int
    """Where the group was (the next offset it would have read)."""
    first_offset: int
    """The first offset found after it: ``expected_offset`` up to here were pruned."""
    resumed_at: int
    """Where the member goes on (``first_offset`` for earliest, the head for latest)."""
    policy: TruncationPolicy

    @property
    def lost_events(self) -> int:
        """Events pruned before the group consumed them."""
        return self.first_offset - self.expected_offset

    @property
    def skipped_events(self) -> int:
        """Events the member will never deliver: the lost ones, plus retained ones skipped by latest."""
        return self.resumed_at - self.expected_offset
