"""Campaigns: create one for a product at a discount, list them, read one with its participants."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from functions.group_commerce.rules import STATUSES, group_price_minor, parse_deadline
from functions.group_commerce.store import (
    CAMPAIGN_COLUMNS,
    campaign_contract,
    campaign_view,
    load_campaign,
    participant_rows,
    uuid_or_none,
)
from fusion.contracts import CampaignCreated
from fusion.db import pool
from fusion.declare import command, query
from fusion.listing import Listing
from fusion.uow import UnitOfWork
from fusion.web import bad_request, json_response, not_found, parse_body, query_choice, utc_now

SERVICE = "group-commerce"
MAX_SEATS = 100_000


class NewCampaign(BaseModel):
    model_config = ConfigDict(extra="ignore")

    product_id: uuid.UUID = Field(alias="productId")
    min_participants: StrictInt = Field(alias="minParticipants", ge=1, le=MAX_SEATS)
    max_participants: StrictInt = Field(alias="maxParticipants", ge=1, le=MAX_SEATS)
    discount_percentage: Decimal = Field(alias="discountPercentage", gt=0, lt=100, decimal_places=2)
    expires_at: datetime = Field(alias="expiresAt")

    @field_validator("product_id", mode="before")
    @classmethod
    def uuid_string(cls, value: object) -> uuid.UUID:
        parsed = uuid_or_none(value) if isinstance(value, str) else None
        if parsed is None:
            raise ValueError(f"must be a product id (a UUID), got {value!r}")
        return parsed

    @field_validator("expires_at", mode="before")
    @classmethod
    def iso_8601(cls, value: object) -> datetime:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 timestamp string, e.g. 2030-01-31T18:00:00Z")
        try:
            return parse_deadline(value)
        except ValueError:
            raise ValueError(f"must be an ISO 8601 timestamp, got {value!r}") from None


def _checked(campaign: NewCampaign) -> NewCampaign:
    """The rules that involve more than one field, or the clock."""
    if campaign.max_participants < campaign.min_participants:
        minimum = campaign.min_participants
        raise bad_request("maxParticipants", f"must be at least minParticipants ({minimum})")
    if campaign.expires_at <= utc_now():
        raise bad_request("expiresAt", "must be in the future")
    return campaign


def _product(uow: UnitOfWork, product_id: uuid.UUID) -> Any:
    row = uow.execute(
        "SELECT id, sku, price_minor, currency FROM group_commerce.products WHERE id = :id",
        {"id": product_id},
    ).first()
    if row is None:
        raise bad_request("productId", f"unknown product {product_id}")
    return row


@command("create-campaign", service=SERVICE, routes=["POST /campaigns"], body=NewCampaign)
def create_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Create a group-buying campaign for a product and publish group-commerce.campaign.created."""
    campaign = _checked(parse_body(request, NewCampaign))
    product = _product(uow, campaign.product_id)
    row = uow.execute(
        f"INSERT INTO group_commerce.campaigns (id, product_id, sku, min_participants, max_participants, "
        f"discount_percentage, original_price_minor, group_price_minor, currency, expires_at) "
        f"VALUES (:id, :product_id, :sku, :min, :max, :discount, :original, :group_price, :currency, "
        f":expires_at) "
        f"RETURNING {CAMPAIGN_COLUMNS}",
        {
            "id": uuid.uuid4(), "product_id": product.id, "sku": product.sku,
            "min": campaign.min_participants, "max": campaign.max_participants,
            "discount": campaign.discount_percentage, "original": product.price_minor,
            "group_price": group_price_minor(product.price_minor, campaign.discount_percentage),
            "currency": product.currency, "expires_at": campaign.expires_at,
        },
    ).one()
    body = campaign_view(row)
    uow.publish("group-commerce.campaign.created", subject=body["id"],
                payload=CampaignCreated(campaign=campaign_contract(row)))
    return json_response(body, 201, headers={"Location": f"/campaigns/{body['id']}"})


@query("list-campaigns", service=SERVICE, routes=["GET /campaigns"],
       params=["status", "productId", "limit", "offset"])
def list_campaigns(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List campaigns, oldest first: status, productId, limit, offset."""
    listing = Listing("group_commerce.campaigns", CAMPAIGN_COLUMNS, order_by="created_at, id")
    if status := query_choice(request, "status", STATUSES):
        listing.where("status = :status", status=status)
    if raw_product := request.args.get("productId", "").strip():
        product_id = uuid_or_none(raw_product)
        if product_id is None:
            raise bad_request("productId", f"must be a UUID, got {raw_product!r}")
        listing.where("product_id = :product_id", product_id=product_id)
    return json_response([campaign_view(row) for row in listing.fetch(request)])


@query("get-campaign", service=SERVICE, routes=["GET /campaigns/{id}"])
def get_campaign(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One campaign with its participants, in the order they joined."""
    campaign_id = uuid_or_none(params["id"])
    if campaign_id is None:
        raise not_found("campaign", params["id"])
    # One snapshot, so the participants match actualParticipants.
    with pool().connect() as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = load_campaign(conn, campaign_id)
        if row is None:
            raise not_found("campaign", params["id"])
        participants = participant_rows(conn, campaign_id)
    body = campaign_view(row)
    body["participants"] = [{"userId": p.user_id, "joinedAt": p.joined_at} for p in participants]
    return json_response(body)
