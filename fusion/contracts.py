"""Typed payloads of every event (the contracts between services), JSON in camelCase.

Versioned by additive change only: new fields are optional, no field is renamed or removed.
Money travels as a decimal number next to its ISO 4217 currency, as in the HTTP API.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


Amount = Annotated[Decimal, PlainSerializer(_json_number, return_type=Any, when_used="json")]


class Contract(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# catalog
class ProductCreated(Contract):
    id: str
    sku: str
    name: str
    description: str | None = None
    price: Amount
    currency: str
    inventory: int
    category: str | None = None
    created_at: datetime

    @property
    def price_set_at(self) -> datetime:
        return self.created_at


class ProductUpdated(Contract):
    """A product as it is after a change: its price was set at `updated_at`, and an announcement of an older
    price (a late product.created or product.updated) never replaces a newer one."""

    id: str
    sku: str
    name: str
    description: str | None = None
    price: Amount
    currency: str
    category: str | None = None
    updated_at: datetime

    @property
    def price_set_at(self) -> datetime:
        return self.updated_at


# orders
class OrderItem(Contract):
    sku: str
    quantity: int
    price: Amount


class OrderCreated(Contract):
    order_id: str
    customer_id: str
    total: Amount
    currency: str
    items: list[OrderItem]
    campaign_id: str | None = None


class OrderConfirmed(Contract):
    order_id: str
    customer_id: str
    total: Amount
    currency: str


class OrderFailed(Contract):
    order_id: str
    customer_id: str
    reason: str


class OrderCancelled(Contract):
    """An order was cancelled from `previous_status` (created, confirmed or paid): its stock is to be
    released and, when it was paid, its payment refunded. Published when the customer cancels and when a
    confirmed order is not paid within the hold time (reason "payment not received in time")."""

    order_id: str
    customer_id: str
    previous_status: str
    reason: str


class OrderExpired(Contract):
    """Not published by the orders service: an unpaid order that runs out of time is cancelled (order.cancelled)."""

    order_id: str
    customer_id: str
    reason: str


# inventory
class StockLine(Contract):
    sku: str
    quantity: int


class InventoryReserved(Contract):
    order_id: str
    items: list[StockLine]


class InventoryInsufficient(Contract):
    order_id: str
    sku: str
    requested: int
    available: int


class InventoryReleased(Contract):
    order_id: str
    items: list[StockLine]
    reason: str


# group commerce
class Campaign(Contract):
    id: str
    product_id: str
    sku: str
    status: str
    min_participants: int
    max_participants: int
    actual_participants: int
    discount_percentage: Amount
    original_price: Amount
    group_price: Amount
    currency: str
    expires_at: datetime
    created_at: datetime | None = None
    leader: str | None = None  # the first participant whose payment was authorized
    refunded_seats: int = 0  # seats charged and then refunded because their group order failed


class CampaignCreated(Contract):
    campaign: Campaign


class CampaignJoined(Contract):
    campaign: Campaign
    user_id: str


class CampaignSuccessful(Contract):
    campaign: Campaign
    participants: list[str]


class CampaignExpired(Contract):
    campaign: Campaign
    participants: list[str]


class CampaignClosed(Contract):
    campaign: Campaign
    participants: list[str] | None = None


class SeatHeld(Contract):
    """A seat is held for a participant until its payment is authorized or the hold ends."""

    campaign: Campaign
    user_id: str
    hold_expires_at: datetime


class SeatConfirmed(Contract):
    """A counted seat of a campaign that reached its minimum: its authorization is to be captured."""

    campaign: Campaign
    user_id: str


class SeatReleased(Contract):
    """A seat that will not be paid: its authorization, if any, is to be cancelled."""

    campaign_id: str
    user_id: str
    reason: str  # declined | hold_expired | campaign_expired | campaign_closed | campaign_full


class CampaignStockHeld(Contract):
    campaign_id: str
    sku: str
    quantity: int


class CampaignStockRefused(Contract):
    campaign_id: str
    sku: str
    requested: int
    available: int


# payments
class SeatPayment(Contract):
    """A seat's payment moved: authorized (held on the card), captured (charged) or refunded."""

    payment_id: str
    campaign_id: str
    user_id: str
    amount: Amount
    currency: str
    campaign: Campaign | None = None  # carried on payment.seat.captured: what the group order is for


class SeatPaymentFailed(Contract):
    """A seat's card was declined at authorization, or its capture failed."""

    payment_id: str
    campaign_id: str
    user_id: str
    reason: str
    failure_code: str | None = None


class PaymentCreated(Contract):
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    status: str
    provider_payment_id: str | None = None
    customer_id: str | None = None


class PaymentSucceeded(Contract):
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    customer_id: str | None = None
    provider_payment_id: str | None = None


class PaymentFailed(Contract):
    payment_id: str
    order_id: str
    reason: str
    customer_id: str | None = None
    failure_code: str | None = None  # the provider's code, e.g. card_declined
    provider_payment_id: str | None = None


class PaymentRefunded(Contract):
    payment_id: str
    order_id: str
    amount: Amount
    currency: str
    customer_id: str | None = None
    refund_id: str | None = None
    reason: str | None = None  # requested | order_cancelled | order_failed | order_expired | late_payment | provider


# shipping
class LabelCreated(Contract):
    order_id: str
    shipment_id: str
    tracking_number: str
    carrier: str
    label_url: str
    customer_id: str | None = None


class ShipmentDelivered(Contract):
    order_id: str
    shipment_id: str
    tracking_number: str
    delivered_at: datetime
    carrier: str | None = None
    customer_id: str | None = None


CONTRACTS: dict[str, type[Contract]] = {
    "product.created": ProductCreated,
    "product.updated": ProductUpdated,
    "order.created": OrderCreated,
    "order.confirmed": OrderConfirmed,
    "order.failed": OrderFailed,
    "order.cancelled": OrderCancelled,
    "order.expired": OrderExpired,
    "inventory.reserved": InventoryReserved,
    "inventory.insufficient": InventoryInsufficient,
    "inventory.released": InventoryReleased,
    "group-commerce.campaign.created": CampaignCreated,
    "group-commerce.campaign.joined": CampaignJoined,
    "group-commerce.campaign.successful": CampaignSuccessful,
    "group-commerce.campaign.expired": CampaignExpired,
    "group-commerce.campaign.closed": CampaignClosed,
    "group-commerce.seat.held": SeatHeld,
    "group-commerce.seat.confirmed": SeatConfirmed,
    "group-commerce.seat.released": SeatReleased,
    "inventory.campaign.held": CampaignStockHeld,
    "inventory.campaign.refused": CampaignStockRefused,
    "payment.seat.authorized": SeatPayment,
    "payment.seat.declined": SeatPaymentFailed,
    "payment.seat.captured": SeatPayment,
    "payment.seat.capture-failed": SeatPaymentFailed,
    "payment.seat.refunded": SeatPayment,
    "payment.created": PaymentCreated,
    "payment.succeeded": PaymentSucceeded,
    "payment.failed": PaymentFailed,
    "payment.refunded": PaymentRefunded,
    "shipping.label.created": LabelCreated,
    "shipping.delivered": ShipmentDelivered,
}
