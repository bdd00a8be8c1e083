"""The saga state machine as pure functions: given an instance and what just happened, the next
instance and the history entries that record it. No I/O here; the engine runs actions and saves.

    running:      step PENDING → EXECUTING → (action) → AWAITING_REPLY → (reply) → next step ...
                  → completed
    on failure:   retry the step (attempt + 1) while attempts remain, else compensating
    compensating: for each step to undo, newest first: PENDING → COMPENSATING → (compensation)
                  → compensated (or failed when a compensation keeps failing)

The failed step itself is compensated too (when it has a compensation): it may have partly
happened, and a compensation must tolerate a step that never happened.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sluice.services.sagas.definition import Saga
from sluice.store.values.sagas import (
    HistoryEntry,
    ReplyOutcome,
    SagaInstance,
    SagaStatus,
    StepAttempt,
    StepPhase,
    StepReply,
    saga_id_for,
)

Transition = tuple[SagaInstance, list[HistoryEntry]]


def new_instance(saga: Saga, correlation_id: str, context: dict[str, Any]) -> Transition:
    """A new instance at its first step, not started yet."""
    instance = SagaInstance(
        saga_id=saga_id_for(saga.name, correlation_id),
        saga_name=saga.name,
        correlation_id=correlation_id,
        status=SagaStatus.RUNNING,
        current_step=saga.steps[0].name,
        phase=StepPhase.PENDING,
        attempt=1,
        completed_steps=(),
        to_compensate=(),
        reply=None,
        failure=None,
        context=context,
        version=1,
    )
    return instance, [HistoryEntry("saga_started", detail=f"correlation id {correlation_id}")]


def start_step(instance: SagaInstance) -> Transition:
    """Record that the current step's action is about to run."""
    return (
        dataclasses.replace(instance, phase=StepPhase.EXECUTING),
        [HistoryEntry("step_started", step=instance.current_step, attempt=instance.attempt)],
    )


def step_succeeded(saga: Saga, instance: SagaInstance, context: dict[str, Any]) -> Transition:
    """The action returned: wait for the step's reply, or complete the step."""
    step = saga.step(_current(instance))
    if step.reply is not None:
        waiting = dataclasses.replace(instance, phase=StepPhase.AWAITING_REPLY, context=context)
        return waiting, [HistoryEntry("step_awaiting_reply", step=step.name, attempt=instance.attempt)]
    return _complete_step(saga, instance, context, [])


def record_reply(instance: SagaInstance, reply: StepReply) -> Transition:
    """Keep the reply (or timeout) that decides the current step."""
    kind = "timeout_fired" if reply.outcome is ReplyOutcome.TIMED_OUT else "reply_received"
    entry = HistoryEntry(kind, step=instance.current_step, attempt=instance.attempt, detail=reply.detail)
    return dataclasses.replace(instance, reply=reply), [entry]


def accepts_reply(instance: SagaInstance, step: str, attempt: int | None = None) -> bool:
    """True when ``step`` (at ``attempt``, if given) is running and still undecided: a reply or a
    timeout for anything else is ignored, which is what makes a timeout fire once."""
    return (
        instance.status is SagaStatus.RUNNING
        and instance.current_step == step
        and (attempt is None or instance.attempt == attempt)
        and instance.phase in (StepPhase.EXECUTING, StepPhase.AWAITING_REPLY)
        and instance.reply is None
    )


def resolve_reply(saga: Saga, instance: SagaInstance) -> Transition:
    """Complete or fail the step awaiting a reply, now that it has one."""
    reply = instance.reply
    assert reply is not None
    if reply.outcome is ReplyOutcome.COMPLETED:
        return _complete_step(saga, instance, instance.context, [])
    return step_failed(saga, instance, instance.context, reply.detail)


def step_failed(saga: Saga, instance: SagaInstance, context: dict[str, Any], reason: str) -> Transition:
    """The action raised (or the reply said no, or timed out): retry it, or start compensating."""
    step = saga.step(_current(instance))
    failed = HistoryEntry("step_failed", step=step.name, attempt=instance.attempt, detail=reason)
    if instance.attempt < step.max_attempts:
        retry = dataclasses.replace(
            instance, phase=StepPhase.PENDING, attempt=instance.attempt + 1, reply=None, context=context
        )
        return retry, [failed]
    undo = [StepAttempt(step.name, instance.attempt), *reversed(instance.completed_steps)]
    to_compensate = tuple(entry for entry in undo if saga.step(entry.step).compensation is not None)
    compensating = dataclasses.replace(
        instance,
        status=SagaStatus.COMPENSATING,
        current_step=to_compensate[0].step if to_compensate else None,
        phase=StepPhase.PENDING,
        attempt=1,
        to_compensate=to_compensate,
        reply=None,
        failure=f"step {step.name!r} failed: {reason}",
        context=context,
    )
    if not to_compensate:
        return _finish(compensating, SagaStatus.COMPENSATED, [failed])
    return compensating, [failed]


def start_compensation(instance: SagaInstance) -> Transition:
    """Record that the first step to undo is about to be compensated."""
    target = instance.to_compensate[0]
    entry = HistoryEntry(
        "compensation_started", step=target.step, attempt=target.attempt, detail=f"try {instance.attempt}"
    )
    return dataclasses.replace(instance, phase=StepPhase.COMPENSATING), [entry]


def compensation_succeeded(instance: SagaInstance, context: dict[str, Any]) -> Transition:
    """One step undone: the next, or the saga is compensated."""
    target, remaining = instance.to_compensate[0], instance.to_compensate[1:]
    done = HistoryEntry("compensation_completed", step=target.step, attempt=target.attempt)
    following = dataclasses.replace(
        instance,
        current_step=remaining[0].step if remaining else None,
        phase=StepPhase.PENDING,
        attempt=1,
        to_compensate=remaining,
        context=context,
    )
    if not remaining:
        return _finish(following, SagaStatus.COMPENSATED, [done])
    return following, [done]


def compensation_failed(saga: Saga, instance: SagaInstance, reason: str) -> Transition:
    """A compensation raised: try it again, or give up (status failed) after the last attempt."""
    target = instance.to_compensate[0]
    failed = HistoryEntry(
        "compensation_failed", step=target.step, attempt=target.attempt, detail=f"try {instance.attempt}: {reason}"
    )
    if instance.attempt < saga.max_compensation_attempts:
        return dataclasses.replace(instance, phase=StepPhase.PENDING, attempt=instance.attempt + 1), [failed]
    gave_up = dataclasses.replace(
        instance, failure=f"compensation of {target.step!r} failed {instance.attempt} times: {reason}"
    )
    return _finish(gave_up, SagaStatus.FAILED, [failed])


def _complete_step(
    saga: Saga, instance: SagaInstance, context: dict[str, Any], history: list[HistoryEntry]
) -> Transition:
    name = _current(instance)
    history = [*history, HistoryEntry("step_completed", step=name, attempt=instance.attempt)]
    following = saga.next_step(name)
    advanced = dataclasses.replace(
        instance,
        current_step=None if following is None else following.name,
        phase=StepPhase.PENDING,
        attempt=1,
        completed_steps=(*instance.completed_steps, StepAttempt(name, instance.attempt)),
        reply=None,
        context=context,
    )
    if following is None:
        return _finish(advanced, SagaStatus.COMPLETED, history)
    return advanced, history


def _finish(instance: SagaInstance, status: SagaStatus, history: list[HistoryEntry]) -> Transition:
    finished = dataclasses.replace(instance, status=status, current_step=None, phase=StepPhase.PENDING)
    return finished, [*history, HistoryEntry(f"saga_{status.value}", detail=instance.failure)]


def _current(instance: SagaInstance) -> str:
    if instance.current_step is None:
        raise AssertionError(f"saga {instance.saga_id} has no current step (status {instance.status})")
    return instance.current_step
