"""The example's events and the streams they go to."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from sluice import EventData

ORDERS = "shop.orders"
"""OrderPlaced: what starts the saga."""
FULFILMENT = "shop.fulfilment"
"""What the saga's steps did: InventoryReserved, InventoryUnavailable, InventoryReleased, OrderShipped."""
PAYMENT_REQUESTS = "shop.payment-requests"
"""Commands to the payment service: PaymentRequested, RefundRequested."""
PAYMENTS = "shop.payments"
"""The payment service's answers: PaymentCharged, PaymentDeclined, PaymentRefunded."""
STREAMS = (ORDERS, FULFILMENT, PAYMENT_REQUESTS, PAYMENTS)


class OrderPlaced(BaseModel):
    order_id: str
    customer: str
    sku: str
    quantity: int
    amount_cents: int
    card: str
    """``declined`` makes the payment service decline the charge."""


class InventoryReserved(BaseModel):
    order_id: str
    sku: str
    quantity: int


class InventoryUnavailable(BaseModel):
    order_id: str
    sku: str
    quantity: int
    available: int


class InventoryReleased(BaseModel):
    order_id: str
    sku: str
    quantity: int


class PaymentRequested(BaseModel):
    order_id: str
    amount_cents: int
    card: str


class RefundRequested(BaseModel):
    order_id: str


class PaymentCharged(BaseModel):
    order_id: str
    amount_cents: int


class PaymentDeclined(BaseModel):
    order_id: str
    reason: str


class PaymentRefunded(BaseModel):
    order_id: str
    amount_cents: int


class OrderShipped(BaseModel):
    order_id: str
    tracking_number: str


def event(model: BaseModel, event_id: uuid.UUID) -> EventData:
    """``model`` as an event with a chosen id: appending it again (a retried step) stores nothing new."""
    return EventData(event_type=type(model).__name__, data=model.model_dump(mode="json"), event_id=event_id)
