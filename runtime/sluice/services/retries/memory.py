"""Consumer-group dead letters of the in-memory backend: the same contract as PostgreSQL, kept in
a dict per store. Each operation runs without awaiting once it has looked its group up, so it is
atomic on its event loop, as a statement is on PostgreSQL. Nothing survives the process.

PostgreSQL deletes a group's dead letters with the group (a foreign key); here each dead letter
remembers when its group was created, and those of a group that is gone (or was deleted and
created again) are dropped the next time that group's dead letters are looked at.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sluice.core.errors import GroupNotFoundError
from sluice.store.contracts.dead_letters import DeadLetterBurial, GroupDeadLetters, RedriveClaim
from sluice.store.values.dead_letters import FailedDelivery, GroupDeadLetter

if TYPE_CHECKING:
    from sluice.core.events import RecordedEvent
    from sluice.store.port import GroupStorage, StreamLog


@dataclasses.dataclass(slots=True)
class _Entry:
    letter: GroupDeadLetter
    group_created_at: datetime
    token: uuid.UUID | None = None
    claimed_until: float = 0.0
    """time.monotonic() when the claim's lease runs out."""


class MemoryGroupDeadLetters(GroupDeadLetters):
    """Dead letters in a dict, ordered by id."""

    def __init__(self, log: StreamLog, groups: GroupStorage) -> None:
        super().__init__(log, groups)
        self._entries: dict[int, _Entry] = {}
        self._next_id = 1

    async def _bury(self, event: RecordedEvent, failure: FailedDelivery, burial: DeadLetterBurial) -> GroupDeadLetter:
        group_created_at = await self._current_group(event.stream_name, burial.group_id)
        if group_created_at is None:
            raise GroupNotFoundError(event.stream_name, burial.group_id)
        now = datetime.now(UTC)
        for entry in self._entries.values():
            old = entry.letter
            if (old.stream_name, old.group_id, old.partition, old.offset) == (
                event.stream_name,
                burial.group_id,
                event.partition,
                event.offset,
            ):
                entry.letter = dataclasses.replace(
                    old,
                    error=failure.error,
                    attempts=old.attempts + failure.attempts,
                    last_failure_at=failure.last_failure_at,
                    dead_lettered_at=now,
                    dead_letter_stream=burial.dead_letter_stream,
                    consumer_id=burial.consumer_id,
                    redrive_requested_at=None,
                )
                entry.token = None
                return entry.letter
        letter = GroupDeadLetter(
            dead_letter_id=self._next_id,
            stream_name=event.stream_name,
            group_id=burial.group_id,
            partition=event.partition,
            offset=event.offset,
            event_id=event.event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            content_type=event.content_type,
            payload=event.payload,
            metadata=dict(event.metadata),
            correlation_id=event.correlation_id,
            appended_at=event.timestamp,
            error=failure.error,
            attempts=failure.attempts,
            first_failure_at=failure.first_failure_at,
            last_failure_at=failure.last_failure_at,
            dead_lettered_at=now,
            dead_letter_stream=burial.dead_letter_stream,
            consumer_id=burial.consumer_id,
        )
        self._entries[letter.dead_letter_id] = _Entry(letter, group_created_at)
        self._next_id += 1
        return letter

    async def _current_group(self, stream_name: str, group_id: str) -> datetime | None:
        """When the group was created (None if it does not exist); drops the dead letters of any
        earlier group of that name, as PostgreSQL's cascade does."""
        group = await self.groups.describe(stream_name, group_id)
        created_at = None if group is None else group.created_at
        for identifier, entry in list(self._entries.items()):
            if _belongs(entry.letter, stream_name, group_id) and entry.group_created_at != created_at:
                del self._entries[identifier]
        return created_at

    async def _list(self, stream_name: str, group_id: str, limit: int, after_id: int) -> list[GroupDeadLetter]:
        await self._current_group(stream_name, group_id)
        found = [
            entry.letter
            for identifier, entry in sorted(self._entries.items())
            if identifier > after_id and _belongs(entry.letter, stream_name, group_id)
        ]
        return found[:limit]

    async def _get(self, stream_name: str, group_id: str, dead_letter_id: int) -> GroupDeadLetter | None:
        await self._current_group(stream_name, group_id)
        entry = self._entries.get(dead_letter_id)
        return entry.letter if entry is not None and _belongs(entry.letter, stream_name, group_id) else None

    async def _redrive(self, stream_name: str, group_id: str, dead_letter_ids: list[int] | None) -> list[int]:
        await self._current_group(stream_name, group_id)
        now = datetime.now(UTC)
        marked = []
        for identifier, entry in self._selected(stream_name, group_id, dead_letter_ids):
            if entry.letter.redrive_requested_at is None:
                entry.letter = dataclasses.replace(
                    entry.letter, redrive_requested_at=now, redrives=entry.letter.redrives + 1
                )
                marked.append(identifier)
        return marked

    async def _purge(self, stream_name: str, group_id: str, dead_letter_ids: list[int] | None) -> int:
        await self._current_group(stream_name, group_id)
        chosen = [identifier for identifier, _ in self._selected(stream_name, group_id, dead_letter_ids)]
        for identifier in chosen:
            del self._entries[identifier]
        return len(chosen)

    async def _claim(
        self, stream_name: str, group_id: str, consumer_id: str, token: uuid.UUID, lease: timedelta
    ) -> GroupDeadLetter | None:
        await self._current_group(stream_name, group_id)
        now = time.monotonic()
        for _, entry in sorted(self._entries.items()):
            letter = entry.letter
            if not _belongs(letter, stream_name, group_id) or letter.redrive_requested_at is None:
                continue
            if entry.token is not None and entry.claimed_until >= now:
                continue
            entry.token = token
            entry.claimed_until = now + lease.total_seconds()
            return letter
        return None

    async def _complete(self, claim: RedriveClaim) -> bool:
        entry = self._held(claim)
        if entry is None:
            return False
        del self._entries[claim.dead_letter.dead_letter_id]
        return True

    async def _fail(self, claim: RedriveClaim, failure: FailedDelivery) -> bool:
        entry = self._held(claim)
        if entry is None:
            return False
        entry.letter = dataclasses.replace(
            entry.letter,
            error=failure.error,
            attempts=entry.letter.attempts + failure.attempts,
            last_failure_at=failure.last_failure_at,
            consumer_id=claim.consumer_id,
            dead_lettered_at=datetime.now(UTC),
            redrive_requested_at=None,
        )
        entry.token = None
        return True

    async def _release(self, claim: RedriveClaim) -> bool:
        entry = self._held(claim)
        if entry is None:
            return False
        entry.token = None
        return True

    def _held(self, claim: RedriveClaim) -> _Entry | None:
        entry = self._entries.get(claim.dead_letter.dead_letter_id)
        return entry if entry is not None and entry.token == claim.token else None

    def _selected(self, stream_name: str, group_id: str, dead_letter_ids: list[int] | None) -> list[tuple[int, _Entry]]:
        wanted = None if dead_letter_ids is None else set(dead_letter_ids)
        return [
            (identifier, entry)
            for identifier, entry in sorted(self._entries.items())
            if _belongs(entry.letter, stream_name, group_id) and (wanted is None or identifier in wanted)
        ]


def _belongs(letter: GroupDeadLetter, stream_name: str, group_id: str) -> bool:
    return letter.stream_name == stream_name and letter.group_id == group_id
