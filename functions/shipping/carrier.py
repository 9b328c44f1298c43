"""Carriers: what shipping needs from one, and the built-in carrier that works offline.

A carrier sells a label for a parcel (a tracking number and a printable document) and later
reports the parcel's progress (POST /carrier/updates). The built-in carrier does both without a
network: it prints its own PDF labels, and `advance_shipment` plays its scans one step at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from functions.shipping.label import LabelContent, render_label
from functions.shipping.rules import DELIVERED, IN_TRANSIT, LABEL_CREATED, new_tracking_number

SENDER_ENV = "SHIPPING_SENDER_ADDRESS"
DEFAULT_SENDER = "FusionCommerce Fulfilment; 1 Warehouse Way; Springfield 12345; United States"


@dataclass(frozen=True)
class Parcel:
    shipment_id: str
    order_id: str
    recipient: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class PurchasedLabel:
    tracking_number: str
    document: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class Scan:
    """One step of a parcel's journey, as a tracking history shows it."""

    status: str
    description: str
    location: str | None = None


class Carrier(Protocol):
    name: str

    def purchase_label(self, parcel: Parcel) -> PurchasedLabel:
        """A label for the parcel: its tracking number and the document to print."""
        ...


def sender_address() -> tuple[str, ...]:
    """The return address printed on labels: SHIPPING_SENDER_ADDRESS, lines separated by ';'."""
    raw = os.environ.get(SENDER_ENV, "").strip() or DEFAULT_SENDER
    return tuple(line.strip() for line in raw.split(";") if line.strip())


class OfflineCarrier:
    """The built-in carrier: PDF labels printed locally and a simulated journey."""

    name = "fusion-offline"
    title = "FusionCommerce Offline Carrier"
    service = "STANDARD PARCEL"
    hub = "FusionCommerce sorting centre"
    _journey = {
        LABEL_CREATED: Scan(IN_TRANSIT, "Picked up by the carrier, in transit", hub),
        IN_TRANSIT: Scan(DELIVERED, "Delivered to the recipient"),
    }

    def purchase_label(self, parcel: Parcel) -> PurchasedLabel:
        tracking_number = new_tracking_number()
        document = render_label(LabelContent(
            carrier_title=self.title, service=self.service, tracking_number=tracking_number,
            sender=sender_address(), recipient=parcel.recipient, order_id=parcel.order_id,
            shipment_id=parcel.shipment_id, created_at=parcel.created_at,
        ))
        return PurchasedLabel(tracking_number, document)

    def next_scan(self, status: str) -> Scan | None:
        """The scan that follows `status` on the simulated journey; None at its end."""
        return self._journey.get(status)


OFFLINE_CARRIER = OfflineCarrier()


def default_carrier() -> Carrier:
    return OFFLINE_CARRIER


STATUS_DESCRIPTIONS = {
    LABEL_CREATED: "Shipping label created, awaiting pickup",
    IN_TRANSIT: "In transit",
    DELIVERED: "Delivered",
}
