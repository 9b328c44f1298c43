"""Carriers: what shipping needs from one, and the built-in carrier that works offline.

A carrier sells a label for a parcel (a tracking number, and a printable document or what printing
it later needs) and reports the parcel's progress (POST /carrier/updates). The built-in carrier does
both without a network: it sells a label with no document while the order ships and prints the PDF
on the label's first download, from what was stored when it was sold (the sender as it was then);
`advance_shipment` plays its scans one step at a time.
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
    """A label sold for a parcel. `document` is None when the carrier prints it later (`print_label`),
    from the parcel, the tracking number and the `sender` stored with the label."""

    tracking_number: str
    sender: tuple[str, ...]
    document: bytes | None = None
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class LabelToPrint:
    """A label sold without a document, as stored when it was sold."""

    parcel: Parcel
    tracking_number: str
    sender: tuple[str, ...]


@dataclass(frozen=True)
class Scan:
    """One step of a parcel's journey, as a tracking history shows it."""

    status: str
    description: str
    location: str | None = None


class Carrier(Protocol):
    name: str

    def purchase_label(self, parcel: Parcel) -> PurchasedLabel:
        """A label for the parcel: its tracking number, and its document or None to print it later."""
        ...

    def print_label(self, label: LabelToPrint) -> bytes:
        """The document of a label this carrier sold without one."""
        ...


def sender_address() -> tuple[str, ...]:
    """The return address printed on labels: SHIPPING_SENDER_ADDRESS, lines separated by ';'."""
    raw = os.environ.get(SENDER_ENV, "").strip() or DEFAULT_SENDER
    return tuple(line.strip() for line in raw.split(";") if line.strip())


class OfflineCarrier:
    """The built-in carrier: PDF labels printed locally on their first download, and a simulated journey."""

    name = "fusion-offline"
    title = "FusionCommerce Offline Carrier"
    service = "STANDARD PARCEL"
    hub = "FusionCommerce sorting centre"
    _journey = {
        LABEL_CREATED: Scan(IN_TRANSIT, "Picked up by the carrier, in transit", hub),
        IN_TRANSIT: Scan(DELIVERED, "Delivered to the recipient"),
    }

    def purchase_label(self, parcel: Parcel) -> PurchasedLabel:
        # Printing takes milliseconds of CPU: not while the order ships, but when the label is first downloaded.
        return PurchasedLabel(new_tracking_number(), sender_address())

    def print_label(self, label: LabelToPrint) -> bytes:
        parcel = label.parcel
        return render_label(LabelContent(
            carrier_title=self.title, service=self.service, tracking_number=label.tracking_number,
            sender=label.sender, recipient=parcel.recipient, order_id=parcel.order_id,
            shipment_id=parcel.shipment_id, created_at=parcel.created_at,
        ))

    def next_scan(self, status: str) -> Scan | None:
        """The scan that follows `status` on the simulated journey; None at its end."""
        return self._journey.get(status)


OFFLINE_CARRIER = OfflineCarrier()


def default_carrier() -> Carrier:
    return OFFLINE_CARRIER


def carrier_named(name: str) -> Carrier:
    """The carrier a shipment names (the one that sold its label)."""
    if name == OFFLINE_CARRIER.name:
        return OFFLINE_CARRIER
    raise LookupError(f"no carrier is named {name!r}")


STATUS_DESCRIPTIONS = {
    LABEL_CREATED: "Shipping label created, awaiting pickup",
    IN_TRANSIT: "In transit",
    DELIVERED: "Delivered",
}
