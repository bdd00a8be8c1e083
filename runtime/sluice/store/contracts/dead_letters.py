"""``GroupDeadLetters``: the dead letters of consumer groups, as one contract with a PostgreSQL and
an in-memory implementation (each storage adapter builds its own: ``store.backend.dead_letters``).

Bury, list, inspect, redrive (all or selected) and purge; and, for the worker, claim a redriven
dead letter under a lease, then complete it (delivered: the row goes), fail it (buried again, with
the new failure) or release it (stopping: another member takes it).

Why a redrive is a row state and not an append: appending the event again to its source stream
would deliver it to every group of that stream. A redriven dead letter stays in this group's
table, marked; only this group's members claim it, alongside new events, and deleting the row on
delivery is its commit. The claim is a lease (token + expiry) so two members never deliver it at
once, and a member that dies holding it delays it by at most the lease.
"""

from __future__ import annotations

import abc
import builtins
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.core.errors import DeadLetterNotFoundError, InvalidArgumentError, StreamNotFoundError, StreamTypeError
from sluice.core.names import validate_group_id, validate_stream_name
from sluice.core.streams import StreamType
from sluice.store.values.dead_letters import FailedDelivery, GroupDeadLetter

if TYPE_CHECKING:
    from sluice.core.events import RecordedEvent
    from sluice.store.port import GroupStorage, StreamLog

MAX_LIST_LIMIT = 10_000
MAX_SELECTION = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class RedriveClaim:
    """A redriven dead letter one member holds (until ``complete``, ``fail`` or ``release``)."""

    dead_letter: GroupDeadLetter
    token: uuid.UUID
    consumer_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetterBurial:
    """Where a failed event comes from and where its dead letter goes."""

    group_id: str
    consumer_id: str
    dead_letter_stream: str


class GroupDeadLetters(abc.ABC):
    """The dead letters of every consumer group of one store. Checks its arguments (typed errors,
    nothing touched on bad input); the backends implement the underscored methods."""

    def __init__(self, log: StreamLog, groups: GroupStorage) -> None:
        self.log = log
        self.groups = groups

    async def bury(self, event: RecordedEvent, failure: FailedDelivery, burial: DeadLetterBurial) -> GroupDeadLetter:
        """Record ``event`` as a dead letter of ``burial.group_id``. Burying the same event (stream,
        partition, offset) again updates its row: attempts add up, the latest error wins, and a
        pending redrive ends."""
        validate_group_id(burial.group_id)
        validate_group_id(burial.consumer_id, "consumer id")
        validate_stream_name(burial.dead_letter_stream)
        return await self._bury(event, failure, burial)

    async def list(
        self, stream_name: str, group_id: str, *, limit: int = 100, after_id: int = 0
    ) -> builtins.list[GroupDeadLetter]:
        """The group's dead letters with ids above ``after_id``, oldest first, at most ``limit``."""
        await self._check_group_arguments(stream_name, group_id)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidArgumentError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        if after_id < 0:
            raise InvalidArgumentError(f"after_id must not be negative, got {after_id}")
        return await self._list(stream_name, group_id, limit, after_id)

    async def get(self, stream_name: str, group_id: str, dead_letter_id: int) -> GroupDeadLetter:
        """One dead letter of the group; DeadLetterNotFoundError if it has none with this id."""
        await self._check_group_arguments(stream_name, group_id)
        found = await self._get(stream_name, group_id, _checked_id(dead_letter_id))
        if found is None:
            raise DeadLetterNotFoundError(stream_name=stream_name, group_id=group_id, dead_letter_id=dead_letter_id)
        return found

    async def redrive(
        self, stream_name: str, group_id: str, *, dead_letter_ids: Sequence[int] | None = None
    ) -> builtins.list[int]:
        """Mark dead letters (the chosen ones, or all) to be delivered to this group again; returns
        the ids marked now (ids already waiting, or unknown, are skipped)."""
        await self._check_group_arguments(stream_name, group_id)
        return sorted(await self._redrive(stream_name, group_id, _checked_selection(dead_letter_ids)))

    async def purge(self, stream_name: str, group_id: str, *, dead_letter_ids: Sequence[int] | None = None) -> int:
        """Delete dead letters (the chosen ones, or all) for good; returns how many."""
        await self._check_group_arguments(stream_name, group_id)
        return await self._purge(stream_name, group_id, _checked_selection(dead_letter_ids))

    async def claim_redrive(
        self, stream_name: str, group_id: str, *, consumer_id: str, lease: timedelta
    ) -> RedriveClaim | None:
        """Take the oldest redriven dead letter of the group that nobody holds, for ``lease``."""
        if lease <= timedelta(0):
            raise InvalidArgumentError(f"lease must be positive, got {lease}")
        token = uuid.uuid4()
        letter = await self._claim(stream_name, group_id, consumer_id, token, lease)
        return None if letter is None else RedriveClaim(dead_letter=letter, token=token, consumer_id=consumer_id)

    async def complete_redrive(self, claim: RedriveClaim) -> bool:
        """Delivered: the dead letter is done and goes. False if the claim was lost meanwhile."""
        return await self._complete(claim)

    async def fail_redrive(self, claim: RedriveClaim, failure: FailedDelivery) -> bool:
        """Not delivered after every attempt: it is a dead letter again, with the new failure."""
        return await self._fail(claim, failure)

    async def release_redrive(self, claim: RedriveClaim) -> bool:
        """Not delivered (the member stops): it waits for any member of the group again."""
        return await self._release(claim)

    async def _check_group_arguments(self, stream_name: str, group_id: str) -> None:
        validate_stream_name(stream_name)
        validate_group_id(group_id)
        info = await self.log.describe_stream(stream_name)
        if info is None or info.deleted:
            raise StreamNotFoundError(stream_name)
        if info.type is not StreamType.PERSISTENT:
            raise StreamTypeError(
                f"{stream_name!r} is a queue: its dead letters are the queue's own (store.dead_letters)"
            )

    @abc.abstractmethod
    async def _bury(
        self, event: RecordedEvent, failure: FailedDelivery, burial: DeadLetterBurial
    ) -> GroupDeadLetter: ...

    @abc.abstractmethod
    async def _list(
        self, stream_name: str, group_id: str, limit: int, after_id: int
    ) -> builtins.list[GroupDeadLetter]: ...

    @abc.abstractmethod
    async def _get(self, stream_name: str, group_id: str, dead_letter_id: int) -> GroupDeadLetter | None: ...

    @abc.abstractmethod
    async def _redrive(
        self, stream_name: str, group_id: str, dead_letter_ids: builtins.list[int] | None
    ) -> builtins.list[int]: ...

    @abc.abstractmethod
    async def _purge(self, stream_name: str, group_id: str, dead_letter_ids: builtins.list[int] | None) -> int: ...

    @abc.abstractmethod
    async def _claim(
        self, stream_name: str, group_id: str, consumer_id: str, token: uuid.UUID, lease: timedelta
    ) -> GroupDeadLetter | None: ...

    @abc.abstractmethod
    async def _complete(self, claim: RedriveClaim) -> bool: ...

    @abc.abstractmethod
    async def _fail(self, claim: RedriveClaim, failure: FailedDelivery) -> bool: ...

    @abc.abstractmethod
    async def _release(self, claim: RedriveClaim) -> bool: ...


def _checked_id(dead_letter_id: int) -> int:
    if isinstance(dead_letter_id, bool) or not isinstance(dead_letter_id, int) or dead_letter_id < 1:
        raise InvalidArgumentError(f"dead letter ids are positive integers, got {dead_letter_id!r}")
    return dead_letter_id


def _checked_selection(dead_letter_ids: Sequence[int] | None) -> list[int] | None:
    if dead_letter_ids is None:
        return None
    if isinstance(dead_letter_ids, str | bytes):
        raise InvalidArgumentError("dead_letter_ids must be a sequence of integers")
    if not dead_letter_ids:
        raise InvalidArgumentError("dead_letter_ids is empty: give at least one id, or None for all")
    if len(dead_letter_ids) > MAX_SELECTION:
        raise InvalidArgumentError(f"at most {MAX_SELECTION} dead letter ids at once, got {len(dead_letter_ids)}")
    return sorted({_checked_id(identifier) for identifier in dead_letter_ids})
