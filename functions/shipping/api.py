"""The shipping HTTP API: shipments and their labels, a parcel's tracking, and the carrier's updates.

GET /shipments/{id}/label answers the stored label; a label its carrier prints later (the built-in
carrier's) is printed and stored by its first download, and later downloads answer the same bytes.

Carriers report progress to POST /carrier/updates {trackingNumber, status: in_transit|delivered,
at?, location?, description?}. When SHIPPING_CARRIER_SECRET is set the request must carry it in
the `X-Carrier-Secret` header (401 otherwise); outside development an unset secret refuses every
update. A repeated or stale update is acknowledged (200, "applied": false).
"""

from __future__ import annotations

import hmac
import os
import uuid
from typing import Annotated

import flask

from functions.shipping import flow, store
from functions.shipping.flow import CarrierUpdate, ShipmentRequest, UnknownTrackingNumber, normalised_tracking_number
from functions.shipping.rules import STATUSES
from functions.shipping.store import SERVICE, Shipment
from fusion.auth import PUBLIC, SIGNED, customer_or_staff, ensure_owner, staff, visible_customer
from fusion.config import settings
from fusion.db import Sql
from fusion.declare import command, query
from fusion.errors import NotFound, Unauthenticated
from fusion.listing import page_of
from fusion.uow import UnitOfWork, reading
from fusion.web import Instant, View, answer, one_of, parse_body, path_uuid, query_text, text_param

CARRIER_SECRET_ENV = "SHIPPING_CARRIER_SECRET"
CARRIER_SECRET_HEADER = "X-Carrier-Secret"


ShipmentStatus = Annotated[str, one_of(STATUSES)]
PDF = "application/pdf"


class ShipmentView(View):
    """An order's parcel: its carrier, tracking number, status and label."""

    id: uuid.UUID
    order_id: str
    customer_id: str | None
    carrier: str
    tracking_number: str
    status: ShipmentStatus
    label_url: str
    created_at: Instant
    updated_at: Instant
    delivered_at: Instant | None


class TrackingEventView(View):
    """A scan of the parcel: what happened, where, and when."""

    status: str
    description: str
    location: str | None
    at: Instant


class ShipmentDetailView(ShipmentView):
    """A shipment with its tracking history, oldest first."""

    history: list[TrackingEventView]


class TrackingView(View):
    """A parcel's status and tracking history, oldest first."""

    tracking_number: str
    carrier: str
    status: ShipmentStatus
    shipment_id: uuid.UUID
    delivered_at: Instant | None
    history: list[TrackingEventView]


class CarrierReceipt(TrackingView):
    """The parcel after the update; applied is false for a repeated or stale one."""

    applied: bool


def shipment_view(shipment: Shipment) -> ShipmentView:
    return ShipmentView.model_validate(_shipment_fields(shipment))


def _shipment_fields(shipment: Shipment) -> dict[str, object]:
    return {
        "id": shipment.id, "order_id": shipment.order_id, "customer_id": shipment.customer_id,
        "carrier": shipment.carrier, "tracking_number": shipment.tracking_number, "status": shipment.status,
        "label_url": shipment.label_url, "created_at": shipment.created_at, "updated_at": shipment.updated_at,
        "delivered_at": shipment.delivered_at,
    }


def history_view(db: Sql, shipment: Shipment) -> list[TrackingEventView]:
    """The shipment's tracking history, oldest first."""
    return [TrackingEventView(status=event.status, description=event.description, location=event.location,
                              at=event.occurred_at) for event in store.find_history(db, shipment.id)]


def _tracking_fields(db: Sql, shipment: Shipment) -> dict[str, object]:
    return {
        "tracking_number": shipment.tracking_number, "carrier": shipment.carrier, "status": shipment.status,
        "shipment_id": shipment.id, "delivered_at": shipment.delivered_at, "history": history_view(db, shipment),
    }


@command("create-shipment", service=SERVICE, routes=["POST /shipments"], auth=staff("shipping:manage"),
         body=ShipmentRequest, answers={201: ShipmentView, 200: ShipmentView})
def create_shipment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Ship a paid order (201), or return its shipment (200) when it has one."""
    shipment, created = flow.ship_on_request(parse_body(request, ShipmentRequest), uow)
    return answer(shipment_view(shipment), 201 if created else 200, headers={"Location": f"/shipments/{shipment.id}"})


@query("list-shipments", service=SERVICE, routes=["GET /shipments"], auth=customer_or_staff("shipping:manage"),
       params=[text_param("orderId", 200), "limit", "offset"], answers=list[ShipmentView])
def list_shipments(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List shipments, oldest first: orderId, limit, offset."""
    order_id = query_text(request, "orderId", 200)
    with reading(SERVICE) as db:
        shipments = store.find_shipments(db, page_of(request), order_id=order_id, customer_id=visible_customer())
    return answer([shipment_view(shipment) for shipment in shipments])


@query("get-shipment", service=SERVICE, routes=["GET /shipments/{id}"], auth=customer_or_staff("shipping:manage"),
       answers=ShipmentDetailView)
def get_shipment(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One shipment by id, with its tracking history."""
    shipment_id = path_uuid(params, "id", "shipment")
    with reading(SERVICE) as db:
        shipment = store.find_shipment(db, shipment_id)
        if shipment is None:
            raise NotFound("shipment", params["id"])
        ensure_owner(shipment.customer_id, "shipment", params["id"])
        detail = {**_shipment_fields(shipment), "history": history_view(db, shipment)}
        return answer(ShipmentDetailView.model_validate(detail))


@query("get-shipment-label", service=SERVICE, routes=["GET /shipments/{id}/label"],
       auth=customer_or_staff("shipping:manage"), answers=PDF)
def get_shipment_label(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The shipment's printable label (application/pdf)."""
    shipment_id = path_uuid(params, "id", "shipment")
    with reading(SERVICE) as db:
        shipment = store.find_shipment(db, shipment_id)
        ensure_owner(shipment.customer_id if shipment else None, "shipment", params["id"])
        label = store.find_label(db, shipment_id)
    if shipment is None or label is None:
        raise NotFound("shipment", params["id"])
    document = flow.label_document(shipment, label)  # printed and stored on the first download
    return flask.Response(document, status=200, mimetype=label.content_type, headers={
        "Content-Disposition": f'inline; filename="label-{label.tracking_number}.pdf"',
        "Cache-Control": "private, max-age=86400",
    })


@query("get-tracking", service=SERVICE, routes=["GET /tracking/{trackingNumber}"], auth=PUBLIC,
       answers=TrackingView)
def get_tracking(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A parcel's status and tracking history."""
    tracking_number = normalised_tracking_number(params["trackingNumber"])
    with reading(SERVICE) as db:
        shipment = store.find_shipment_by_tracking(db, tracking_number)
        if shipment is None:
            raise UnknownTrackingNumber(tracking_number)
        return answer(TrackingView.model_validate(_tracking_fields(db, shipment)))


def _check_carrier_secret(request: flask.Request) -> None:
    expected = os.environ.get(CARRIER_SECRET_ENV, "").strip()
    if not expected and settings().environment == "development":
        return
    given = request.headers.get(CARRIER_SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated(f"{CARRIER_SECRET_HEADER} header is missing or wrong", code="unauthorized",
                              field=CARRIER_SECRET_HEADER)


@command("carrier-update", service=SERVICE, routes=["POST /carrier/updates"], auth=SIGNED, body=CarrierUpdate,
         answers=CarrierReceipt)
def carrier_update(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """A carrier reports a parcel in transit or delivered; publishes shipping.delivered on delivery."""
    _check_carrier_secret(request)
    shipment, applied = flow.apply_carrier_update(parse_body(request, CarrierUpdate), uow)
    return answer(CarrierReceipt.model_validate({**_tracking_fields(uow, shipment), "applied": applied}))
