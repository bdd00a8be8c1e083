"""The order-fulfilment saga: reserve inventory → charge payment → ship.

A declined payment (or no answer within the timeout) fails ``charge-payment``; the saga then
compensates in reverse order: a refund request for the payment (which refunds nothing, as nothing
was charged) and the release of the reservation. Run it with ``run_saga_worker(store, saga)`` or
``sluice sagas run --saga shop.saga:saga``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shop.events import ORDERS, PAYMENTS
from shop.inventory import release_inventory, reserve_inventory
from shop.payments import request_payment, request_refund
from shop.shipping import ship
from sluice import RecordedEvent
from sluice.services.sagas import Reply, Saga, SagaStep, SagaTrigger

PAYMENT_TIMEOUT = timedelta(seconds=30)


def order_id_of(event: RecordedEvent) -> str | None:
    return str(event.data["order_id"])


def order_context(event: RecordedEvent) -> dict[str, Any]:
    return {key: event.data[key] for key in ("customer", "sku", "quantity", "amount_cents", "card")}


saga = Saga(
    "order-fulfilment",
    started_by=SagaTrigger(
        stream=ORDERS, event_type="OrderPlaced", correlation=order_id_of, initial_context=order_context
    ),
    steps=[
        SagaStep("reserve-inventory", action=reserve_inventory, compensation=release_inventory),
        SagaStep(
            "charge-payment",
            action=request_payment,
            compensation=request_refund,
            reply=Reply(
                stream=PAYMENTS,
                completes_on=("PaymentCharged",),
                fails_on=("PaymentDeclined",),
                timeout=PAYMENT_TIMEOUT,
            ),
        ),
        SagaStep("ship", action=ship),
    ],
)
