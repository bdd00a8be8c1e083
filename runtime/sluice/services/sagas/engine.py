"""Drives saga instances: starts them from events, runs their actions and compensations, records
replies and timeouts, and saves every move with optimistic concurrency.

Crash safety comes from the order of writes. A step is saved as started (EXECUTING) before its
action runs, and its outcome is saved after; a worker that dies in between leaves the step
EXECUTING, and whoever advances the instance next runs the action again with the same idempotency
key (saga id, step, attempt). Compensations work the same way. Work is handed out through the
saga's queue (``Saga.work_queue``): a work message is acknowledged only after the instance has
been advanced as far as it can go, so a message held by a dead worker is delivered again when its
lease runs out, and ``recover()`` wakes every unfinished instance when a worker starts.

Timeouts are delayed messages on the same queue. One only acts while its step (and attempt) is
still undecided; it is recorded with a conditional save, so a second delivery, or one after the
reply or after the saga finished, is ignored.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sluice.core.errors import SagaConflictError
from sluice.core.events import EventData, RecordedEvent
from sluice.core.messages import QueueMessage
from sluice.services.sagas import transitions
from sluice.services.sagas.definition import Saga, StepExecution
from sluice.services.sagas.repositories import saga_repository
from sluice.store import EventStore
from sluice.store.contracts.sagas import SagaRepository, context_json
from sluice.store.values.sagas import ReplyOutcome, SagaInstance, SagaStatus, StepPhase, StepReply, saga_id_for

logger = logging.getLogger(__name__)

ADVANCE_MESSAGE = "SagaAdvance"
TIMEOUT_MESSAGE = "SagaTimeout"
MAX_FAILURE_TEXT = 500


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_FAILURE_TEXT else text[: MAX_FAILURE_TEXT - 3] + "..."


class SagaEngine:
    """Runs one saga definition against a store and its saga repository."""

    def __init__(self, saga: Saga, store: EventStore, repository: SagaRepository | None = None) -> None:
        self.saga = saga
        self.store = store
        self.repository = repository or saga_repository(store)

    # ----------------------------------------------------------------- inputs

    async def start(self, event: RecordedEvent) -> SagaInstance | None:
        """Start an instance for a trigger event (or find the one its correlation id started);
        None when the event does not start this saga."""
        trigger = self.saga.started_by
        if event.stream_name != trigger.stream or event.event_type != trigger.event_type:
            return None
        try:  # the trigger's functions are the user's: a malformed event must not stop the worker
            correlation_id = trigger.correlation(event)
            context = trigger.initial_context(event) if correlation_id else {}
            context_json(context)
        except Exception as error:
            logger.warning(
                "saga %s: cannot start from %s event %s (%s); ignored",
                self.saga.name,
                event.event_type,
                event.event_id,
                _describe(error),
            )
            return None
        if not correlation_id:
            logger.warning(
                "saga %s: %s event %s has no correlation id; no saga started",
                self.saga.name,
                event.event_type,
                event.event_id,
            )
            return None
        instance, history = transitions.new_instance(self.saga, str(correlation_id), context)
        if await self.repository.create(instance, history):
            await self.wake(instance.saga_id, instance.version)
            return instance
        existing = await self.repository.load(instance.saga_id)
        if existing is not None and not existing.status.finished:
            await self.wake(existing.saga_id, existing.version)
        return existing

    async def deliver_reply(self, event: RecordedEvent) -> bool:
        """Record a reply event for the step it answers; False when it answers nothing running."""
        recorded = False
        for step in self.saga.steps:
            reply = step.reply
            if reply is None or not reply.matches(event):
                continue
            try:
                correlation_id = reply.correlation(event)
            except Exception as error:  # the user's function: a malformed reply is ignored, not fatal
                logger.warning("saga %s: cannot correlate reply %s: %s", self.saga.name, event.event_id, error)
                continue
            if not correlation_id:
                continue
            outcome = ReplyOutcome.COMPLETED if event.event_type in reply.completes_on else ReplyOutcome.FAILED
            detail = f"{event.event_type} ({event.stream_name}@{event.partition}:{event.offset})"
            saga_id = saga_id_for(self.saga.name, str(correlation_id))
            recorded |= await self._record(saga_id, step.name, None, StepReply(outcome, detail))
        return recorded

    async def fire_timeout(self, saga_id: uuid.UUID, step: str, attempt: int) -> bool:
        """Fail ``step`` at ``attempt`` for want of a reply, if it is still waiting; else ignore."""
        return await self._record(saga_id, step, attempt, StepReply(ReplyOutcome.TIMED_OUT, "no reply in time"))

    async def handle_message(self, message: QueueMessage) -> None:
        """Handle one message of the saga's work queue (advance or timeout)."""
        data = message.data
        if not isinstance(data, dict) or "saga_id" not in data:
            logger.warning("saga %s: ignoring malformed work message %s", self.saga.name, message.message_id)
            return
        saga_id = uuid.UUID(str(data["saga_id"]))
        if message.event_type == TIMEOUT_MESSAGE:
            await self.fire_timeout(saga_id, str(data["step"]), int(data["attempt"]))
        else:
            await self.advance(saga_id)

    async def recover(self) -> int:
        """Wake every unfinished instance of this saga (a worker calls it when it starts, so work
        a dead worker held resumes without waiting for its lease to run out). Returns how many."""
        unfinished = await self.repository.list(
            saga_name=self.saga.name, statuses=[SagaStatus.RUNNING, SagaStatus.COMPENSATING], limit=10_000
        )
        for instance in unfinished:
            await self.wake(instance.saga_id, instance.version)
        return len(unfinished)

    async def wake(self, saga_id: uuid.UUID, version: int) -> None:
        """Ask a worker to advance the instance (deduplicated per instance version)."""
        await self.store.enqueue(
            self.saga.work_queue,
            EventData(event_type=ADVANCE_MESSAGE, data={"saga_id": str(saga_id)}),
            dedupe_key=f"advance:{saga_id}:{version}",
        )

    # ----------------------------------------------------------------- advancing

    async def advance(self, saga_id: uuid.UUID) -> SagaInstance | None:
        """Move the instance as far as it can go now: until it finishes or waits for a reply.
        Returns its state then (None if there is no such instance)."""
        while True:
            instance = await self.repository.load(saga_id)
            if instance is None or instance.status.finished:
                return instance
            try:
                moved = await self._advance_once(instance)
            except SagaConflictError:
                continue  # another worker saved first: look again
            if moved is None:
                return instance

    async def _advance_once(self, instance: SagaInstance) -> SagaInstance | None:
        """One move (at most one action or compensation run); None when there is nothing to do."""
        if instance.status is SagaStatus.COMPENSATING:
            return await self._advance_compensation(instance)
        if instance.status is not SagaStatus.RUNNING:
            return None
        if instance.phase is StepPhase.PENDING:
            return await self._save(*transitions.start_step(instance))
        if instance.phase is StepPhase.EXECUTING:
            return await self._execute(instance)
        if instance.reply is None:  # awaiting a reply that has not come
            return None
        return await self._save(*transitions.resolve_reply(self.saga, instance))

    async def _advance_compensation(self, instance: SagaInstance) -> SagaInstance | None:
        if instance.phase is StepPhase.PENDING:
            return await self._save(*transitions.start_compensation(instance))
        return await self._compensate(instance)

    async def _execute(self, instance: SagaInstance) -> SagaInstance | None:
        step = self.saga.step(instance.current_step or "")
        execution = self._execution(instance, instance.current_step or "", instance.attempt, compensating=False)
        try:
            await step.action(execution)
        except Exception as error:  # a failing step is data, not a crash of the worker
            logger.info("saga %s %s: step %s failed: %s", self.saga.name, instance.saga_id, step.name, error)
            reason = _describe(error)
            return await self._save_outcome(
                instance, lambda current: transitions.step_failed(self.saga, current, current.context, reason)
            )
        if step.reply is not None and step.reply.timeout is not None:
            await self._schedule_timeout(instance, delay=step.reply.timeout)
        context = execution.context
        return await self._save_outcome(
            instance, lambda current: transitions.step_succeeded(self.saga, current, context)
        )

    async def _compensate(self, instance: SagaInstance) -> SagaInstance | None:
        target = instance.to_compensate[0]
        compensation = self.saga.step(target.step).compensation
        execution = self._execution(instance, target.step, target.attempt, compensating=True)
        try:
            if compensation is not None:
                await compensation(execution)
        except Exception as error:  # retried up to max_compensation_attempts, then status failed
            logger.warning(
                "saga %s %s: compensation of %s failed: %s", self.saga.name, instance.saga_id, target.step, error
            )
            reason = _describe(error)
            return await self._save_outcome(
                instance, lambda current: transitions.compensation_failed(self.saga, current, reason)
            )
        context = execution.context
        return await self._save_outcome(instance, lambda current: transitions.compensation_succeeded(current, context))

    def _execution(self, instance: SagaInstance, step: str, attempt: int, *, compensating: bool) -> StepExecution:
        return StepExecution(
            saga_id=instance.saga_id,
            saga_name=instance.saga_name,
            correlation_id=instance.correlation_id,
            step=step,
            attempt=attempt,
            context=copy.deepcopy(instance.context),
            store=self.store,
            compensating=compensating,
        )

    async def _save_outcome(
        self, instance: SagaInstance, build: Callable[[SagaInstance], transitions.Transition]
    ) -> SagaInstance | None:
        """Save what an action (or compensation) did. If a reply or timeout was recorded meanwhile
        (a conflict), apply the outcome to the newer version instead of running the action again,
        as long as the instance is still at the same step, attempt and phase."""
        current = instance
        while True:
            try:
                return await self._save(*build(current))
            except SagaConflictError:
                newer = await self.repository.load(instance.saga_id)
                if newer is None or not _same_position(instance, newer):
                    return newer
                current = newer

    async def _save(self, instance: SagaInstance, history: list[Any]) -> SagaInstance:
        saved = await self.repository.save(instance, history)
        if saved.status.finished:
            logger.info("saga %s %s: %s", self.saga.name, saved.saga_id, saved.status.value)
        return saved

    async def _record(self, saga_id: uuid.UUID, step: str, attempt: int | None, reply: StepReply) -> bool:
        while True:
            instance = await self.repository.load(saga_id)
            if instance is None:
                return False
            if not transitions.accepts_reply(instance, step, attempt):
                if instance.status is SagaStatus.RUNNING and instance.current_step == step and instance.reply:
                    # Delivered again after a crash between recording it and waking a worker.
                    await self.wake(instance.saga_id, instance.version)
                return False
            try:
                saved = await self.repository.save(*transitions.record_reply(instance, reply))
            except SagaConflictError:
                continue
            await self.wake(saved.saga_id, saved.version)
            return True

    async def _schedule_timeout(self, instance: SagaInstance, *, delay: timedelta) -> None:
        step, attempt = instance.current_step, instance.attempt
        await self.store.enqueue(
            self.saga.work_queue,
            EventData(
                event_type=TIMEOUT_MESSAGE,
                data={"saga_id": str(instance.saga_id), "step": step, "attempt": attempt},
            ),
            delay=delay,
            dedupe_key=f"timeout:{instance.saga_id}:{step}:{attempt}",
        )


def _same_position(before: SagaInstance, after: SagaInstance) -> bool:
    return (
        before.status is after.status
        and before.current_step == after.current_step
        and before.attempt == after.attempt
        and before.phase is after.phase
        and before.to_compensate[:1] == after.to_compensate[:1]
    )
