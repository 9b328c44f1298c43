"""Tracking: a parcel's status and history by tracking number, and the carrier's status updates.

Carriers report progress to POST /carrier/updates {trackingNumber, status: in_transit|delivered,
at?, location?, description?}. When SHIPPING_CARRIER_SECRET is set the request must carry it in
the `X-Carrier-Secret` header (401 otherwise); outside development an unset secret refuses every
update. A shipment only moves forward (label_created → in_transit → delivered); a repeated or
stale update is acknowledged (200, "applied": false) and changes nothing, so a carrier retrying
it is harmless. Reaching delivered publishes shipping.delivered, once.

`advance_shipment(tracking_number)` plays the built-in carrier's next scan (for the CLI).
"""

from __future__ import annotations

import hmac
import os
from datetime import UTC, datetime
from typing import Any, Literal

import flask
from pydantic import BaseModel, ConfigDict, Field

from functions.shipping import store
from functions.shipping.carrier import OFFLINE_CARRIER, STATUS_DESCRIPTIONS
from functions.shipping.rules import DELIVERED, can_move
from functions.shipping.store import SERVICE, SHIPMENT_COLUMNS
from fusion.config import settings
from fusion.db import pool
from fusion.declare import command, query
from fusion.uow import UnitOfWork, unit_of_work
from fusion.web import ApiError, json_response, not_found, parse_body, utc_now

CARRIER_SECRET_ENV = "SHIPPING_CARRIER_SECRET"
CARRIER_SECRET_HEADER = "X-Carrier-Secret"


class UnknownTrackingNumber(LookupError):
    pass


def tracking_view(conn: Any, shipment: Any) -> dict[str, Any]:
    return {
        "trackingNumber": shipment.tracking_number,
        "carrier": shipment.carrier,
        "status": shipment.status,
        "shipmentId": str(shipment.id),
        "deliveredAt": shipment.delivered_at,
        "history": store.history(conn, shipment.id),
    }


@query("get-tracking", service=SERVICE, routes=["GET /tracking/{trackingNumber}"])
def get_tracking(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A parcel's status and tracking history."""
    tracking_number = params["trackingNumber"].strip().upper()
    with pool().connect() as conn:
        shipment = conn.execute(
            f"SELECT {SHIPMENT_COLUMNS} FROM shipping.shipments WHERE tracking_number = :tn",
            {"tn": tracking_number},
        ).first()
        if shipment is None:
            raise not_found("tracking number", tracking_number)
        return json_response(tracking_view(conn, shipment))


def move_shipment(uow: UnitOfWork, shipment: Any, status: str, at: datetime,
                  description: str | None = None, location: str | None = None) -> tuple[Any, bool]:
    """(shipment, moved): move a locked shipment forward to `status`; anything else changes nothing."""
    if not can_move(shipment.status, status):
        return shipment, False
    moved = store.set_status(uow, shipment.id, status, at)
    store.add_tracking_event(uow, shipment.id, status, description or STATUS_DESCRIPTIONS[status], location, at)
    if status == DELIVERED:
        store.publish_delivered(uow, moved)
    return moved, True


class CarrierUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    tracking_number: str = Field(alias="trackingNumber", min_length=1, max_length=64)
    status: Literal["in_transit", "delivered"]
    at: datetime | None = None
    location: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)


def _check_carrier_secret(request: flask.Request) -> None:
    expected = os.environ.get(CARRIER_SECRET_ENV, "").strip()
    if not expected and settings().environment == "development":
        return
    given = request.headers.get(CARRIER_SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, f"{CARRIER_SECRET_HEADER} header is missing or wrong", code="unauthorized",
                       field=CARRIER_SECRET_HEADER)


def _moment(at: datetime | None) -> datetime:
    if at is None:
        return utc_now()
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@command("carrier-update", service=SERVICE, routes=["POST /carrier/updates"], body=CarrierUpdate)
def carrier_update(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """A carrier reports a parcel in transit or delivered; publishes shipping.delivered on delivery."""
    _check_carrier_secret(request)
    update = parse_body(request, CarrierUpdate)
    tracking_number = update.tracking_number.upper()
    shipment = store.lock_shipment_by_tracking(uow, tracking_number)
    if shipment is None:
        raise not_found("tracking number", tracking_number)
    shipment, applied = move_shipment(uow, shipment, update.status, _moment(update.at), update.description,
                                      update.location)
    return json_response({**tracking_view(uow.conn, shipment), "applied": applied})


def advance_shipment(tracking_number: str) -> str:
    """Move a built-in-carrier parcel one step along its journey; its status afterwards.

    label_created → in_transit → delivered; a delivered or cancelled parcel stays as it is.
    Raises UnknownTrackingNumber for a tracking number no shipment has.
    """
    with unit_of_work(SERVICE) as uow:
        shipment = store.lock_shipment_by_tracking(uow, tracking_number.strip().upper())
        if shipment is None:
            raise UnknownTrackingNumber(tracking_number)
        if shipment.carrier != OFFLINE_CARRIER.name:
            raise ValueError(f"{tracking_number} is shipped by {shipment.carrier}, not the built-in carrier")
        scan = OFFLINE_CARRIER.next_scan(shipment.status)
        if scan is None:
            return str(shipment.status)
        moved, _ = move_shipment(uow, shipment, scan.status, utc_now(), scan.description, scan.location)
        return str(moved.status)
