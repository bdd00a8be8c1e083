"""The truncation signal: what a member does when retention pruned events its group never consumed.

Offsets are dense and retention only deletes a partition's oldest events, so a read that asked for
offset ``n`` and got a first event past ``n`` proves that ``n`` up to that event were pruned: a member
detects it at no extra cost. It is never a silent jump: every truncation is counted (the
``sluice_consumer_truncations`` metric and ``MemberStats.truncations``), logged as a warning, kept in
``consumption.truncations``, attached to the next batch of the partition (``ConsumedBatch.truncation``),
and handled by the group's policy (``ConsumerGroupOptions.on_truncation``: earliest, latest or fail).
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from sluice.core.errors import ConsumerTruncatedError
from sluice.observability.metrics import default_metrics
from sluice.store.values.consumer_group_options import TruncationPolicy
from sluice.store.values.member_reports import MemberStats, Truncation

logger = logging.getLogger(__name__)

truncations_seen = Counter(
    "sluice_consumer_truncations",
    "Times a consumer-group member found that retention had pruned events its group had not consumed.",
    ("stream", "group"),
    registry=default_metrics.registry,
)


def announce(truncation: Truncation) -> None:
    """Count and log a truncation (the member also keeps it and applies its policy)."""
    truncations_seen.labels(truncation.stream_name, truncation.group_id).inc()
    logger.warning(
        "consumer group %s of %s was at offset %s of partition %s but retention pruned up to offset %s "
        "(%s events never delivered); policy %s: %s",
        truncation.group_id,
        truncation.stream_name,
        truncation.expected_offset,
        truncation.partition,
        truncation.first_offset,
        truncation.lost_events,
        truncation.policy.value,
        {
            TruncationPolicy.EARLIEST: f"going on from offset {truncation.resumed_at}",
            TruncationPolicy.LATEST: f"skipping to the head, offset {truncation.resumed_at}",
            TruncationPolicy.FAIL: "stopping",
        }[truncation.policy],
    )


class Truncations:
    """The truncations one member found, oldest first (``consumption.truncations``)."""

    def __init__(self, *, stream_name: str, group_id: str, policy: TruncationPolicy, stats: MemberStats) -> None:
        self._stream_name = stream_name
        self._group_id = group_id
        self._policy = policy
        self._stats = stats
        self.found: list[Truncation] = []
        """Every truncation this member found, oldest first."""

    def note(self, partition: int, *, expected_offset: int, first_offset: int, resumed_at: int) -> Truncation:
        """Record a truncation (kept, counted, logged); raise ConsumerTruncatedError under the fail policy."""
        truncation = Truncation(
            stream_name=self._stream_name,
            group_id=self._group_id,
            partition=partition,
            expected_offset=expected_offset,
            first_offset=first_offset,
            resumed_at=resumed_at,
            policy=self._policy,
        )
        self.found.append(truncation)
        self._stats.truncations += 1
        announce(truncation)
        if truncation.policy is TruncationPolicy.FAIL:
            raise ConsumerTruncatedError(
                stream_name=self._stream_name,
                group_id=self._group_id,
                partition=partition,
                expected_offset=expected_offset,
                first_offset=first_offset,
            )
        return truncation

    def replace(self, previous: Truncation, extended: Truncation) -> None:
        """A truncation found earlier turned out longer (QUEUE delivery walks a pruned range claim by claim)."""
        found = self.found
        for index in range(len(found) - 1, -1, -1):
            if found[index] is previous:
                found[index] = extended
                break
