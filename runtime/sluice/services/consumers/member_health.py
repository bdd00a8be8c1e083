"""Whether a consumer-group member can go on: the database failures it waits out, and the one that stops it.

A member's joins, heartbeats, reads and automatic commits wait out transient failures (see
transient.py) with backoff; ``Availability`` remembers which of those activities fail now and
since when (logged once when it starts and once when the database answers again), and what
stopped the member for good (its heartbeat failed for another reason, or ended): from then on the
member owns nothing, and its delivery loop raises that error. ``MemberHealth`` (a value of the store layer,
``sluice.store.values.member_reports``) is what ``consumption.health`` (a worker's readiness) shows.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sluice.services.consumers.member_state import Ownership
from sluice.services.consumers.transient import RetryBackoff, is_transient
from sluice.services.consumers.waiting import wait_either
from sluice.store.values.member_reports import MemberHealth

logger = logging.getLogger("sluice.services.consumers.member")
"""The member's logger: these messages are the member's, as they always were."""


class Availability:
    """The transient failures a member is waiting out, and the failure that stopped it."""

    def __init__(self, *, consumer_id: str, group_id: str, ownership: Ownership) -> None:
        self._consumer_id = consumer_id
        self._group_id = group_id
        self._ownership = ownership
        self.failure: BaseException | None = None
        """Why the heartbeat stopped for good; the delivery loop raises it."""
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.unavailable: dict[str, str] = {}
        """Activities (join, heartbeat, read, commit) failing on a transient error now, and why."""
        self._unavailable_since: float | None = None
        self._read_backoff = RetryBackoff()

    def unavailable_for(self, activity: str, error: BaseException) -> None:
        """A transient failure of ``activity``: logged when it starts, shown by ``health``."""
        if activity not in self.unavailable:
            logger.warning(
                "consumer %s of group %s: %s failed, the database is unavailable (retrying with backoff): %s",
                self._consumer_id,
                self._group_id,
                activity,
                error,
            )
        self.unavailable[activity] = f"{type(error).__name__}: {error}"
        if self._unavailable_since is None:
            self._unavailable_since = time.monotonic()

    def available_for(self, activity: str) -> None:
        """``activity`` succeeded: when nothing fails any more, the outage is over (and logged so)."""
        if self.unavailable.pop(activity, None) is None or self.unavailable:
            return
        if self._unavailable_since is not None:
            logger.warning(
                "consumer %s of group %s: the database answers again after %.1f s; consuming",
                self._consumer_id,
                self._group_id,
                time.monotonic() - self._unavailable_since,
            )
        self._unavailable_since = None

    def unavailable_health(self) -> MemberHealth | None:
        """Not ready, and why, while the database is unavailable (None when it answers)."""
        if not self.unavailable:
            return None
        since = time.monotonic() - (self._unavailable_since or time.monotonic())
        reasons = "; ".join(f"{activity}: {reason}" for activity, reason in sorted(self.unavailable.items()))
        return MemberHealth(False, f"database unavailable for {since:.0f} s, retrying ({reasons})")

    def fail(self, error: BaseException) -> None:
        """The heartbeat cannot go on: stop delivering, and let the delivery loop raise ``error``."""
        logger.error("consumer %s of group %s stops: %s", self._consumer_id, self._group_id, error)
        self.failure = error
        self._ownership.drop_all()

    def watch_heartbeat(self, task: asyncio.Task[None]) -> None:
        """The member's heartbeat task: if it ends, the member stops (``raise_if_failed``)."""
        self._heartbeat_task = task

    def raise_if_failed(self) -> None:
        """Raise what stopped the member for good, if anything did (its heartbeat ending included)."""
        if self.failure is not None:
            raise self.failure
        task = self._heartbeat_task
        if task is not None and task.done() and not task.cancelled():
            self.fail(RuntimeError(f"the heartbeat of consumer {self._consumer_id!r} ended"))
            raise self.failure  # type: ignore[misc]

    async def wait_out_read_failure(self, error: Exception) -> None:
        """A read (or claim) failed: wait before the next one if the failure is transient, else raise it."""
        if not is_transient(error):
            raise error
        self.unavailable_for("read", error)
        await wait_either(self._ownership.assignment_changed, seconds=self._read_backoff.next_delay())

    def read_succeeded(self) -> None:
        """A read (or claim) succeeded: its backoff starts over."""
        if self._read_backoff.failures:
            self._read_backoff.reset()
        self.available_for("read")
