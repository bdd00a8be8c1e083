"""Which member owns which partition: an even, sticky assignment computed by a pure function.

Even: every member owns ``floor(P / M)`` or ``ceil(P / M)`` partitions. Sticky: a partition stays
with its current owner whenever that owner is still a member and under its share, so a rebalance
moves as few partitions as possible. Deterministic: every member computes the same answer from the
same state, whichever of them runs the rebalance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def assign_partitions(
    partitions: int, members: Sequence[str], current_owners: Mapping[int, str | None]
) -> dict[int, str | None]:
    """The new owner of every partition (None when there are no members)."""
    if not members:
        return dict.fromkeys(range(partitions))
    ordered = sorted(set(members))
    base, extra = divmod(partitions, len(ordered))
    # The members that keep the most partitions get the larger shares, which keeps moves minimal.
    kept_counts = dict.fromkeys(ordered, 0)
    for partition in range(partitions):
        owner = current_owners.get(partition)
        if owner in kept_counts:
            kept_counts[owner] += 1
    by_kept = sorted(ordered, key=lambda member: (-kept_counts[member], member))
    quota = {member: base + (1 if index < extra else 0) for index, member in enumerate(by_kept)}
    owned = dict.fromkeys(ordered, 0)
    assignment: dict[int, str | None] = {}
    unassigned: list[int] = []
    for partition in range(partitions):
        owner = current_owners.get(partition)
        if owner in quota and owned[owner] < quota[owner]:
            assignment[partition] = owner
            owned[owner] += 1
        else:
            unassigned.append(partition)
    for partition in unassigned:
        member = min(ordered, key=lambda candidate: (owned[candidate] - quota[candidate], owned[candidate], candidate))
        assignment[partition] = member
        owned[member] += 1
    return assignment


def moved_partitions(before: Mapping[int, str | None], after: Mapping[int, str | None]) -> list[int]:
    """Partitions whose owner changes (their epoch must be bumped to fence the old owner)."""
    return sorted(partition for partition, owner in after.items() if before.get(partition) != owner)
