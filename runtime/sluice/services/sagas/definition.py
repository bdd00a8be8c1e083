"""How a saga is declared: the event that starts it, its steps with their compensations, and replies.

    saga = Saga(
        "order-fulfilment",
        started_by=SagaTrigger(stream="orders", event_type="OrderPlaced", correlation=order_id_of),
        steps=[
            SagaStep("reserve-inventory", action=reserve, compensation=release),
            SagaStep("charge-payment", action=request_payment, compensation=refund,
                     reply=Reply(stream="payments", completes_on=("PaymentCharged",),
                                 fails_on=("PaymentDeclined",), timeout=timedelta(seconds=30))),
            SagaStep("ship", action=ship),
        ],
    )

A step's action and compensation are ``async def f(execution: StepExecution) -> None``; raising
fails the step (or the compensation). Both must be idempotent for one ``execution.idempotency_key``
(saga id, step, attempt): a worker that dies after the side effect but before saving runs it again
with the same key. A compensation must also tolerate a step that never happened.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sluice.core.errors import InvalidNameError, SagaDefinitionError
from sluice.core.events import RecordedEvent
from sluice.core.names import validate_stream_name

if TYPE_CHECKING:
    from sluice.store import EventStore

MAX_SAGA_NAME_LENGTH = 100


def correlation_id_of(event: RecordedEvent) -> str | None:
    """The default correlation: the correlation id the event was appended with."""
    return event.correlation_id


def context_of(event: RecordedEvent) -> dict[str, Any]:
    """The default initial context: the starting event's JSON object (or ``{"event": data}``)."""
    data = event.data
    return dict(data) if isinstance(data, dict) else {"event": data}


@dataclasses.dataclass(slots=True)
class StepExecution:
    """What a step's action (or compensation) receives. ``context`` may be changed in place: the
    changes are saved with the step's outcome (discarded if it raises)."""

    saga_id: uuid.UUID
    saga_name: str
    correlation_id: str
    step: str
    attempt: int
    context: dict[str, Any]
    store: EventStore
    compensating: bool = False

    @property
    def idempotency_key(self) -> str:
        """``<saga id>:<step>:<attempt>``: the same every time this attempt runs (or is compensated)."""
        return f"{self.saga_id}:{self.step}:{self.attempt}"

    def event_id(self, purpose: str = "") -> uuid.UUID:
        """A stable event id for an event this attempt appends, so a re-run appends it only once."""
        return uuid.uuid5(self.saga_id, f"{self.step}:{self.attempt}:{self.compensating}:{purpose}")


StepAction = Callable[[StepExecution], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """A step that completes when a reply arrives: an event of ``completes_on`` on ``stream`` with
    the saga's correlation id completes it, one of ``fails_on`` fails it, and no reply within
    ``timeout`` (a durable, delayed queue message) fails it too."""

    stream: str
    completes_on: tuple[str, ...]
    fails_on: tuple[str, ...] = ()
    timeout: timedelta | None = None
    correlation: Callable[[RecordedEvent], str | None] = correlation_id_of

    def matches(self, event: RecordedEvent) -> bool:
        return event.stream_name == self.stream and (
            event.event_type in self.completes_on or event.event_type in self.fails_on
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SagaStep:
    """One step: an action, its compensation (None: nothing to undo), an optional reply to wait
    for, and how many attempts the action gets before the saga compensates."""

    name: str
    action: StepAction
    compensation: StepAction | None = None
    reply: Reply | None = None
    max_attempts: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class SagaTrigger:
    """Events of ``event_type`` on ``stream`` start an instance, one per correlation id."""

    stream: str
    event_type: str
    correlation: Callable[[RecordedEvent], str | None] = correlation_id_of
    initial_context: Callable[[RecordedEvent], dict[str, Any]] = context_of


class Saga:
    """A saga definition. Names: 1-100 characters from letters, digits, '.', '_', ':' and '-'."""

    def __init__(
        self,
        name: str,
        *,
        started_by: SagaTrigger,
        steps: Sequence[SagaStep],
        max_compensation_attempts: int = 5,
    ) -> None:
        try:
            validate_stream_name(name)
            validate_stream_name(started_by.stream)
            for step in steps:
                validate_stream_name(step.name)
                if step.reply is not None:
                    validate_stream_name(step.reply.stream)
        except InvalidNameError as error:
            raise SagaDefinitionError(f"saga {name!r}: {error}") from error
        if len(name) > MAX_SAGA_NAME_LENGTH:
            raise SagaDefinitionError(f"saga name {name!r} is longer than {MAX_SAGA_NAME_LENGTH} characters")
        if not steps:
            raise SagaDefinitionError(f"saga {name!r} has no steps")
        names = [step.name for step in steps]
        if len(set(names)) != len(names):
            raise SagaDefinitionError(f"saga {name!r}: step names must be unique, got {names}")
        for step in steps:
            if step.max_attempts < 1:
                raise SagaDefinitionError(f"saga {name!r} step {step.name!r}: max_attempts must be at least 1")
            if step.reply is not None:
                if not step.reply.completes_on:
                    raise SagaDefinitionError(f"saga {name!r} step {step.name!r}: a reply needs completes_on")
                if step.reply.timeout is not None and step.reply.timeout <= timedelta(0):
                    raise SagaDefinitionError(f"saga {name!r} step {step.name!r}: the reply timeout must be positive")
        if max_compensation_attempts < 1:
            raise SagaDefinitionError(f"saga {name!r}: max_compensation_attempts must be at least 1")
        self.name = name
        self.started_by = started_by
        self.steps = tuple(steps)
        self.max_compensation_attempts = max_compensation_attempts
        self._by_name = {step.name: step for step in steps}

    def step(self, name: str) -> SagaStep:
        """The step called ``name``; SagaDefinitionError if the definition has none (an instance
        saved by another version of the saga)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise SagaDefinitionError(f"saga {self.name!r} has no step {name!r}") from None

    def next_step(self, name: str) -> SagaStep | None:
        """The step after ``name``, or None after the last."""
        index = self.steps.index(self.step(name)) + 1
        return self.steps[index] if index < len(self.steps) else None

    @property
    def work_queue(self) -> str:
        """The queue of the saga's work and timeout messages."""
        return f"saga.{self.name}.work"

    @property
    def group_id(self) -> str:
        """The consumer group the saga's workers read its trigger and reply streams with."""
        return f"saga.{self.name}"

    @property
    def streams(self) -> tuple[str, ...]:
        """Every stream the saga reads: the trigger's, then the replies', each once."""
        names = [self.started_by.stream] + [step.reply.stream for step in self.steps if step.reply is not None]
        return tuple(dict.fromkeys(names))

    def __repr__(self) -> str:
        return f"Saga({self.name!r}, steps={[step.name for step in self.steps]})"
