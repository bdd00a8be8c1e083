"""Stored retention policies: create or replace, list, delete, and which one applies to a stream.

Policies live in the store (the ``retention_policies`` table on PostgreSQL, the store's memory for
``memory://``), so every process sharing the database applies the same ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.core.errors import RetentionPolicyNotFoundError
from sluice.core.names import validate_stream_name
from sluice.services.retention.storage import storage_of
from sluice.store.values.retention import RetentionLimits, RetentionPolicy
from sluice.store.values.retention_patterns import most_specific, validate_pattern

if TYPE_CHECKING:
    from sluice.store import EventStore


async def set_policy(store: EventStore, pattern: str, limits: RetentionLimits) -> RetentionPolicy:
    """Create the policy for ``pattern``, or replace its limits (its last run time is kept)."""
    policy = RetentionPolicy(pattern=pattern, limits=limits)
    await storage_of(store).save_policy(policy)
    return policy


async def list_policies(store: EventStore) -> list[RetentionPolicy]:
    """Every stored policy, by pattern."""
    return await storage_of(store).list_policies()


async def delete_policy(store: EventStore, pattern: str) -> None:
    """Delete the policy of ``pattern``; RetentionPolicyNotFoundError when there is none."""
    validate_pattern(pattern)
    if not await storage_of(store).delete_policy(pattern):
        raise RetentionPolicyNotFoundError(pattern)


async def policy_for(store: EventStore, stream_name: str) -> RetentionPolicy | None:
    """The stored policy that applies to ``stream_name`` (the most specific match), if any."""
    validate_stream_name(stream_name)
    return most_specific(await list_policies(store), stream_name)
