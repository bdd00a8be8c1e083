"""The payment service, and the saga step that talks to it.

The step ``charge-payment`` appends a PaymentRequested command; the service, a consumer group on
``shop.payment-requests``, charges the card (card ``declined`` is declined) and answers on
``shop.payments`` with the order id as correlation id; the saga's step completes on PaymentCharged
and fails on PaymentDeclined (or after its timeout). Its compensation asks for a refund, which the
service applies only to a charge that exists: a declined or never-made payment refunds nothing.
Every append uses an event id derived from what caused it, so retries store nothing twice.
"""

from __future__ import annotations

import uuid

from shop.database import postgres, query
from shop.events import (
    PAYMENT_REQUESTS,
    PAYMENTS,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PaymentRequested,
    RefundRequested,
    event,
)
from sluice import ConsumerGroupOptions, OffsetCommitStrategy, RecordedEvent
from sluice.services.sagas import StepExecution
from sluice.store import EventStore

GROUP = "payment-service"


async def request_payment(execution: StepExecution) -> None:
    order = execution.context
    request = PaymentRequested(
        order_id=execution.correlation_id, amount_cents=order["amount_cents"], card=order["card"]
    )
    await execution.store.append(
        PAYMENT_REQUESTS, event(request, execution.event_id("payment")), correlation_id=request.order_id
    )


async def request_refund(execution: StepExecution) -> None:
    refund = RefundRequested(order_id=execution.correlation_id)
    await execution.store.append(
        PAYMENT_REQUESTS, event(refund, execution.event_id("refund")), correlation_id=refund.order_id
    )


def _answer_id(cause: RecordedEvent) -> uuid.UUID:
    return uuid.uuid5(cause.event_id, "answer")


async def handle_payment_command(store: EventStore, command: RecordedEvent) -> None:
    """Charge or refund, then answer (idempotent: a redelivered command gives the same answer)."""
    shop = postgres(store)
    if command.event_type == "PaymentRequested":
        request = PaymentRequested.model_validate(command.data)
        if request.card == "declined":
            answer = event(PaymentDeclined(order_id=request.order_id, reason="card declined"), _answer_id(command))
        else:
            async with shop.acquire() as connection:
                await connection.execute(query("add_charge"), request.order_id, request.amount_cents)
            charged = PaymentCharged(order_id=request.order_id, amount_cents=request.amount_cents)
            answer = event(charged, _answer_id(command))
        await store.append(PAYMENTS, answer, correlation_id=request.order_id)
    elif command.event_type == "RefundRequested":
        refund = RefundRequested.model_validate(command.data)
        async with shop.acquire() as connection:
            amount = await connection.fetchval(query("refund_charge"), refund.order_id)
        if amount is not None:
            refunded = PaymentRefunded(order_id=refund.order_id, amount_cents=amount)
            await store.append(PAYMENTS, event(refunded, _answer_id(command)), correlation_id=refund.order_id)


async def run_payment_service(store: EventStore, *, consumer_id: str = "payments-1") -> None:
    """Handle payment commands until cancelled (at least once: offsets commit after each command)."""
    options = ConsumerGroupOptions(commit_strategy=OffsetCommitStrategy.AFTER_EACH)
    async with store.consumer_groups().consume(
        PAYMENT_REQUESTS, group_id=GROUP, consumer_id=consumer_id, options=options
    ) as commands:
        async for command in commands:
            await handle_payment_command(store, command)
