"""The shipping HTTP API: shipments and their labels, a parcel's tracking, and the carrier's updates.

Carriers report progress to POST /carrier/updates {trackingNumber, status: in_transit|delivered,
at?, location?, description?}. When SHIPPING_CARRIER_SECRET is set the request must carry it in
the `X-Carrier-Secret` header (401 otherwise); outside development an unset secret refuses every
update. A repeated or stale update is acknowledged (200, "applied": false).
"""

from __future__ import annotations

import hmac
import os
from typing import Any

import flask

from functions.shipping import flow, store
from functions.shipping.flow import CarrierUpdate, ShipmentRequest, UnknownTrackingNumber, normalised_tracking_number
from functions.shipping.store import SERVICE, Shipment
from fusion.auth import PUBLIC, SIGNED, customer_or_staff, ensure_owner, staff, visible_customer
from fusion.config import settings
from fusion.db import Sql
from fusion.declare import command, query
from fusion.errors import NotFound, Unauthenticated
from fusion.listing import page_of
from fusion.uow import UnitOfWork, reading
from fusion.web import json_response, parse_body, path_uuid, query_text

CARRIER_SECRET_ENV = "SHIPPING_CARRIER_SECRET"
CARRIER_SECRET_HEADER = "X-Carrier-Secret"


def shipment_view(shipment: Shipment) -> dict[str, Any]:
    """A shipment as the API returns it."""
    return {
        "id": str(shipment.id),
        "orderId": shipment.order_id,
        "customerId": shipment.customer_id,
        "carrier": shipment.carrier,
        "trackingNumber": shipment.tracking_number,
        "status": shipment.status,
        "labelUrl": shipment.label_url,
        "createdAt": shipment.created_at,
        "updatedAt": shipment.updated_at,
        "deliveredAt": shipment.delivered_at,
    }


def history_view(db: Sql, shipment: Shipment) -> list[dict[str, Any]]:
    """The shipment's tracking history, oldest first."""
    return [{"status": event.status, "description": event.description, "location": event.location,
             "at": event.occurred_at} for event in store.find_history(db, shipment.id)]


def tracking_view(db: Sql, shipment: Shipment) -> dict[str, Any]:
    return {
        "trackingNumber": shipment.tracking_number,
        "carrier": shipment.carrier,
        "status": shipment.status,
        "shipmentId": str(shipment.id),
        "deliveredAt": shipment.delivered_at,
        "history": history_view(db, shipment),
    }


@command("create-shipment", service=SERVICE, routes=["POST /shipments"], auth=staff("shipping:manage"),
         body=ShipmentRequest)
def create_shipment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Ship a paid order (201), or return its shipment (200) when it has one."""
    shipment, created = flow.ship_on_request(parse_body(request, ShipmentRequest), uow)
    return json_response(shipment_view(shipment), 201 if created else 200,
                         headers={"Location": f"/shipments/{shipment.id}"})


@query("list-shipments", service=SERVICE, routes=["GET /shipments"], auth=customer_or_staff("shipping:manage"),
       params=["orderId", "limit", "offset"])
def list_shipments(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List shipments, oldest first: orderId, limit, offset."""
    order_id = query_text(request, "orderId", 200)
    with reading(SERVICE) as db:
        shipments = store.find_shipments(db, page_of(request), order_id=order_id, customer_id=visible_customer())
    return json_response([shipment_view(shipment) for shipment in shipments])


@query("get-shipment", service=SERVICE, routes=["GET /shipments/{id}"], auth=customer_or_staff("shipping:manage"))
def get_shipment(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One shipment by id, with its tracking history."""
    shipment_id = path_uuid(params, "id", "shipment")
    with reading(SERVICE) as db:
        shipment = store.find_shipment(db, shipment_id)
        if shipment is None:
            raise NotFound("shipment", params["id"])
        ensure_owner(shipment.customer_id, "shipment", params["id"])
        return json_response({**shipment_view(shipment), "history": history_view(db, shipment)})


@query("get-shipment-label", service=SERVICE, routes=["GET /shipments/{id}/label"],
       auth=customer_or_staff("shipping:manage"))
def get_shipment_label(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The shipment's printable label (application/pdf)."""
    shipment_id = path_uuid(params, "id", "shipment")
    with reading(SERVICE) as db:
        shipment = store.find_shipment(db, shipment_id)
        ensure_owner(shipment.customer_id if shipment else None, "shipment", params["id"])
        label = store.find_label(db, shipment_id)
    if label is None:
        raise NotFound("shipment", params["id"])
    return flask.Response(label.document, status=200, mimetype=label.content_type, headers={
        "Content-Disposition": f'inline; filename="label-{label.tracking_number}.pdf"',
        "Cache-Control": "private, max-age=86400",
    })


@query("get-tracking", service=SERVICE, routes=["GET /tracking/{trackingNumber}"], auth=PUBLIC)
def get_tracking(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A parcel's status and tracking history."""
    tracking_number = normalised_tracking_number(params["trackingNumber"])
    with reading(SERVICE) as db:
        shipment = store.find_shipment_by_tracking(db, tracking_number)
        if shipment is None:
            raise UnknownTrackingNumber(tracking_number)
        return json_response(tracking_view(db, shipment))


def _check_carrier_secret(request: flask.Request) -> None:
    expected = os.environ.get(CARRIER_SECRET_ENV, "").strip()
    if not expected and settings().environment == "development":
        return
    given = request.headers.get(CARRIER_SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated(f"{CARRIER_SECRET_HEADER} header is missing or wrong", code="unauthorized",
                              field=CARRIER_SECRET_HEADER)


@command("carrier-update", service=SERVICE, routes=["POST /carrier/updates"], auth=SIGNED, body=CarrierUpdate)
def carrier_update(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """A carrier reports a parcel in transit or delivered; publishes shipping.delivered on delivery."""
    _check_carrier_secret(request)
    shipment, applied = flow.apply_carrier_update(parse_body(request, CarrierUpdate), uow)
    return json_response({**tracking_view(uow, shipment), "applied": applied})
