"""What the storage of consumer groups holds and returns (members, partitions, assignments, lag): the values live
in the store layer (``sluice.store.values.consumer_groups``), since the storage port names them; this module
keeps the import path the doors, the operator and users' code use.
"""

from sluice.store.values.consumer_groups import (
    Assignment,
    Claim,
    ClaimAcknowledgement,
    GroupDescription,
    GroupSummary,
    Heartbeat,
    MemberDescription,
    MemberState,
    OwnedPartition,
    PartitionCommit,
    PartitionLag,
    PartitionState,
)

__all__ = [
    "Assignment",
    "Claim",
    "ClaimAcknowledgement",
    "GroupDescription",
    "GroupSummary",
    "Heartbeat",
    "MemberDescription",
    "MemberState",
    "OwnedPartition",
    "PartitionCommit",
    "PartitionLag",
    "PartitionState",
]
