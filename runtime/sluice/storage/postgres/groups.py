"""Consumer groups on PostgreSQL.

A heartbeat is one transaction under the group row's lock: read members and partitions, compute
the rebalance plan (``sluice.services.consumers.rebalance``, shared with the memory backend), write what
changed, and notify the other members when ownership moved. Commits are single conditional
UPDATEs: a partition's offset only moves while (owner, epoch) match, so a member that lost the
partition, even one whose connection and advisory locks silently vanished, cannot commit for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import asyncpg

from sluice.core.errors import (
    FencedError,
    GroupNotFoundError,
    InvalidArgumentError,
    StreamNotFoundError,
)
from sluice.core.streams import DeliverySemantics
from sluice.services.consumers.backend import (
    describe_members,
    duplicate_consumer,
    group_signal_key,
    refuse_if_active,
    start_offsets,
    with_partition_epochs,
)
from sluice.services.consumers.rebalance import plan_heartbeat
from sluice.storage.postgres.driver_errors import is_deadlock
from sluice.storage.postgres.queries import query
from sluice.store.values.consumer_group_options import StartPosition
from sluice.store.values.consumer_groups import (
    Assignment,
    Claim,
    ClaimAcknowledgement,
    GroupDescription,
    GroupSummary,
    Heartbeat,
    MemberState,
    PartitionCommit,
    PartitionLag,
    PartitionState,
)

T = TypeVar("T")
DEADLOCK_RETRIES = 3

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


class PostgresConsumerGroups:
    """The consumer-group half of PostgresEventStore."""

    def __init__(self, pool: asyncpg.Pool, notify: Callable[[str], None]) -> None:
        self._pool = pool
        self._notify = notify
        """Wake members in this process and, through NOTIFY, in every other."""

    async def _lock(self, connection: Connection, stream_name: str, group_id: str) -> asyncpg.Record | None:
        record: asyncpg.Record | None = await connection.fetchrow(query("lock_group"), stream_name, group_id)
        return record

    async def _ensure_partitions(
        self, connection: Connection, group: asyncpg.Record, stream_name: str, start: StartPosition
    ) -> list[PartitionState]:
        rows = await connection.fetch(query("group_partitions"), group["group_key"])
        states = [
            PartitionState(row["partition"], row["committed_offset"], row["owner"], row["epoch"], row["pending_owner"])
            for row in rows
        ]
        if len(states) >= group["partitions"]:
            return states
        known = {state.partition for state in states}
        offsets = await _offsets_for(connection, group["stream_id"], start, skip=known)
        await connection.execute(
            query("add_group_partitions"), group["group_key"], list(offsets), list(offsets.values())
        )
        states.extend(PartitionState(partition, offset, None, 0) for partition, offset in offsets.items())
        return sorted(states, key=lambda state: state.partition)

    async def heartbeat(
        self, stream_name: str, group_id: str, heartbeat: Heartbeat, start: StartPosition
    ) -> Assignment:
        async with self._pool.acquire() as connection, connection.transaction():
            group = await self._lock(connection, stream_name, group_id)
            if group is None:
                await connection.execute(query("create_group"), stream_name, group_id)
                group = await self._lock(connection, stream_name, group_id)
                if group is None:
                    raise StreamNotFoundError(stream_name)
            partitions = await self._ensure_partitions(connection, group, stream_name, start)
            members = [_member(row) for row in await connection.fetch(query("group_members"), group["group_key"])]
            # QUEUE members own no partitions: they claim ranges (claim below); only membership is planned.
            queue = group["delivery"] == DeliverySemantics.QUEUE.value
            plan = plan_heartbeat(
                now=group["now"],
                generation=group["generation"],
                members=members,
                partitions=[] if queue else partitions,
                heartbeat=heartbeat,
            )
            group_key = group["group_key"]
            if plan.duplicate:
                if not heartbeat.leaving:
                    await connection.execute(query("record_duplicate_group_member"), group_key, heartbeat.consumer_id)
            elif queue:
                await self._renew_claims(connection, group_key, heartbeat, plan.removed_members, plan.caller is None)
            if plan.removed_members:
                await connection.execute(query("remove_group_members"), group_key, list(plan.removed_members))
            if plan.caller is not None:
                caller = plan.caller
                await connection.execute(
                    query("upsert_group_member"),
                    group_key,
                    caller.consumer_id,
                    caller.instance_id,
                    caller.joined_at,
                    caller.last_heartbeat_at,
                    caller.last_poll_at,
                    caller.session_timeout,
                    caller.max_poll_interval,
                )
            before = {state.partition: state for state in partitions}
            changed = [state for state in plan.partitions if before[state.partition] != state]
            assignment = plan.assignment
            if changed:
                rows = await connection.fetch(
                    query("update_group_partitions"),
                    group_key,
                    [state.partition for state in changed],
                    [state.owner for state in changed],
                    [state.epoch for state in changed],
                    [state.pending_owner for state in changed],
                )
                assignment = _with_committed_offsets(
                    assignment, {row["partition"]: row["committed_offset"] for row in rows}
                )
            if assignment.generation != group["generation"]:
                await connection.execute(query("set_group_generation"), group_key, assignment.generation)
        if plan.duplicate:
            raise duplicate_consumer(stream_name, group_id, heartbeat)
        if plan.changed:
            self._notify(group_signal_key(stream_name, group_id))
        if queue:
            return with_partition_epochs(assignment, partitions)
        return assignment

    @staticmethod
    async def _renew_claims(
        connection: Connection, group_key: int, heartbeat: Heartbeat, removed: Sequence[str], caller_gone: bool
    ) -> None:
        """Extend the caller's leases, or free them at once when it leaves or was expelled; free the
        claims of removed members and of an earlier process with the caller's consumer id."""
        if not caller_gone:
            await connection.execute(
                query("extend_claim_leases"),
                group_key,
                heartbeat.consumer_id,
                heartbeat.instance_id,
                heartbeat.session_timeout,
            )
        await connection.execute(
            query("expire_claims"), group_key, list(removed), heartbeat.consumer_id, heartbeat.instance_id
        )

    async def claim(
        self,
        stream_name: str,
        group_id: str,
        *,
        consumer_id: str,
        instance_id: str,
        count: int,
        lease: timedelta,
        first_partition: int,
    ) -> Claim | None:
        row = await _retrying_deadlocks(
            self._pool.fetchrow,
            query("claim_group_events"),
            stream_name,
            group_id,
            consumer_id,
            instance_id,
            count,
            lease,
            first_partition,
        )
        if row is None:
            return None
        return Claim(
            row["claim_id"], row["attempt"], row["partition"], row["from_offset"], row["to_offset"], row["epoch"]
        )

    async def acknowledge(
        self, stream_name: str, group_id: str, acknowledgements: Sequence[ClaimAcknowledgement]
    ) -> list[ClaimAcknowledgement]:
        rows = await _retrying_deadlocks(
            self._pool.fetch,
            query("acknowledge_group_claims"),
            stream_name,
            group_id,
            [acknowledgement.claim_id for acknowledgement in acknowledgements],
            [acknowledgement.attempt for acknowledgement in acknowledgements],
            [acknowledgement.up_to for acknowledgement in acknowledgements],
        )
        acknowledged = {row["claim_id"] for row in rows}
        return [item for item in acknowledgements if item.claim_id not in acknowledged]

    async def commit(
        self, stream_name: str, group_id: str, consumer_id: str, commits: Sequence[PartitionCommit]
    ) -> None:
        committed = await self._pool.fetch(
            query("commit_group_offsets"),
            stream_name,
            group_id,
            consumer_id,
            [commit.partition for commit in commits],
            [commit.epoch for commit in commits],
            [commit.offset for commit in commits],
        )
        done = {row["partition"] for row in committed}
        failed = [commit for commit in commits if commit.partition not in done]
        if not failed:
            return
        owners = {
            row["partition"]: row
            for row in await self._pool.fetch(query("group_partition_owners"), stream_name, group_id)
        }
        beyond_head = [
            commit
            for commit in failed
            if commit.partition in owners and commit.offset > owners[commit.partition]["head"]
        ]
        if beyond_head:
            commit = beyond_head[0]
            raise InvalidArgumentError(
                f"cannot commit offset {commit.offset} for partition {commit.partition} of {stream_name!r}: "
                f"the head is {owners[commit.partition]['head']}; that commit was not applied"
            )
        fenced = tuple(commit.partition for commit in failed)
        raise FencedError(
            f"consumer {consumer_id!r} no longer owns partition(s) {list(fenced)} of group {group_id!r} "
            "(the group rebalanced or was reset); those offsets were not committed",
            fenced,
        )

    async def describe(self, stream_name: str, group_id: str) -> GroupDescription | None:
        async with self._pool.acquire() as connection:
            group = await connection.fetchrow(query("describe_group"), stream_name, group_id)
            if group is None:
                return None
            partition_rows = await connection.fetch(query("describe_group_partitions"), stream_name, group_id)
            member_rows = await connection.fetch(query("group_members"), group["group_key"])
        partitions = tuple(
            PartitionLag(
                partition=row["partition"],
                committed_offset=row["committed_offset"],
                head=row["head"],
                owner=row["owner"],
                epoch=row["epoch"],
                oldest_unconsumed_at=row["oldest_unconsumed_at"],
                observed_at=row["observed_at"],
            )
            for row in partition_rows
        )
        now: datetime = group["now"]
        members = describe_members(map(_member, member_rows), partitions, now)
        return GroupDescription(
            stream_name=stream_name,
            group_id=group_id,
            generation=group["generation"],
            created_at=group["created_at"],
            members=members,
            partitions=partitions,
        )

    async def list(self) -> list[GroupSummary]:
        rows = await self._pool.fetch(query("list_groups"))
        return [
            GroupSummary(row["stream_name"], row["group_id"], row["members"], int(row["lag_events"])) for row in rows
        ]

    async def reset(self, stream_name: str, group_id: str, target: StartPosition, force: bool) -> GroupDescription:
        async with self._pool.acquire() as connection, connection.transaction():
            group = await self._lock(connection, stream_name, group_id)
            if group is None:
                raise GroupNotFoundError(stream_name, group_id)
            await _refuse_if_active(connection, group, stream_name, group_id, force=force, action="reset its offsets")
            await self._ensure_partitions(connection, group, stream_name, StartPosition())
            offsets = await _offsets_for(connection, group["stream_id"], target, skip=set())
            await connection.execute(
                query("reset_group_offsets"), group["group_key"], list(offsets), list(offsets.values())
            )
            await connection.execute(query("delete_group_claims"), group["group_key"])
            await connection.execute(query("set_group_generation"), group["group_key"], group["generation"] + 1)
        self._notify(group_signal_key(stream_name, group_id))
        description = await self.describe(stream_name, group_id)
        assert description is not None
        return description

    async def delete(self, stream_name: str, group_id: str, force: bool) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            group = await self._lock(connection, stream_name, group_id)
            if group is None:
                return False
            await _refuse_if_active(connection, group, stream_name, group_id, force=force, action="delete it")
            await connection.execute(query("delete_group"), group["group_key"])
        self._notify(group_signal_key(stream_name, group_id))
        return True


async def _offsets_for(
    connection: Connection, stream_id: int, position: StartPosition, *, skip: set[int]
) -> dict[int, int]:
    """The committed offset ``position`` means for each partition of the stream not in ``skip``."""
    bounds = [
        (row["partition"], row["first_offset"], row["head"])
        for row in await connection.fetch(query("partition_bounds"), stream_id)
        if row["partition"] not in skip
    ]

    async def at_time(partition: int) -> int:
        return int(await connection.fetchval(query("offset_at_time_by_id"), stream_id, partition, position.time))

    return await start_offsets(position, bounds, at_time)


async def _retrying_deadlocks(operation: Callable[..., Awaitable[T]], *arguments: object) -> T:
    """Run one statement again if PostgreSQL broke a deadlock by aborting it. Claims and
    acknowledgements lock partition rows and claim rows in a fixed order, but a claim that finds a
    partition drained by a concurrent claim moves on to the next while still holding the first, so
    a rare cycle with an acknowledgement remains possible; the aborted statement changed nothing."""
    for _ in range(DEADLOCK_RETRIES):
        try:
            return await operation(*arguments)
        except Exception as error:  # the pool translates it (DatabaseBusyError caused by the deadlock)
            if not is_deadlock(error):
                raise
    return await operation(*arguments)


def _with_committed_offsets(assignment: Assignment, committed: dict[int, int]) -> Assignment:
    """The assignment with the committed offsets read when its partitions changed hands."""
    partitions = tuple(
        dataclasses.replace(owned, committed_offset=committed.get(owned.partition, owned.committed_offset))
        for owned in assignment.partitions
    )
    return dataclasses.replace(assignment, partitions=partitions)


def _member(row: asyncpg.Record) -> MemberState:
    return MemberState(
        consumer_id=row["consumer_id"],
        instance_id=row["instance_id"],
        joined_at=row["joined_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        last_poll_at=row["last_poll_at"],
        session_timeout=row["session_timeout"],
        max_poll_interval=row["max_poll_interval"],
        duplicates_fenced=row["duplicates_fenced"],
        last_duplicate_at=row["last_duplicate_at"],
    )


async def _refuse_if_active(
    connection: Connection, group: asyncpg.Record, stream_name: str, group_id: str, *, force: bool, action: str
) -> None:
    members = [_member(row) for row in await connection.fetch(query("group_members"), group["group_key"])]
    refuse_if_active(members, group["now"], stream_name=stream_name, group_id=group_id, force=force, action=action)
