"""Group buying over HTTP: create campaigns, list them, read one with its participants, join one."""

from __future__ import annotations

import uuid
from typing import Any

import flask
from pydantic import Field, StrictStr

from functions.group_commerce import flow, store
from functions.group_commerce.flow import Join, NewCampaign
from functions.group_commerce.rules import STATUSES
from functions.group_commerce.store import SERVICE, CampaignRow
from fusion.auth import CUSTOMER, PUBLIC, caller, customer_id_for, staff
from fusion.declare import command, query
from fusion.errors import Invalid, NotFound
from fusion.listing import page_of
from fusion.uow import UnitOfWork, reading
from fusion.web import Body, json_response, parse_body, path_uuid, query_choice, query_text


class Joiner(Body):
    # The signed-in customer; a customer may name only itself (the token is what counts).
    user_id: StrictStr | None = Field(default=None, min_length=1, max_length=128)


def campaign_view(row: CampaignRow) -> dict[str, Any]:
    """A campaign as the API returns it: the event contract's fields, amounts as decimals."""
    return flow.campaign_contract(row).model_dump(by_alias=True)


def _product_filter(request: flask.Request) -> uuid.UUID | None:
    raw = query_text(request, "productId", 64)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid("productId", f"must be a UUID, got {raw!r}") from None


@command("create-campaign", service=SERVICE, routes=["POST /campaigns"], auth=staff("campaigns:write"),
         body=NewCampaign)
def create_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Create a group-buying campaign for a product and publish group-commerce.campaign.created."""
    body = campaign_view(flow.create_campaign(parse_body(request, NewCampaign), uow))
    return json_response(body, 201, headers={"Location": f"/campaigns/{body['id']}"})


@query("list-campaigns", service=SERVICE, routes=["GET /campaigns"], auth=PUBLIC,
       params=["status", "productId", "limit", "offset"])
def list_campaigns(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List campaigns, oldest first: status, productId, limit, offset."""
    status = query_choice(request, "status", STATUSES)
    product_id = _product_filter(request)
    with reading(SERVICE) as db:
        rows = store.campaign_page(db, page_of(request), status=status, product_id=product_id)
    return json_response([campaign_view(row) for row in rows])


@query("get-campaign", service=SERVICE, routes=["GET /campaigns/{id}"], auth=PUBLIC)
def get_campaign(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One campaign with its participants, in the order they joined."""
    campaign_id = path_uuid(params, "id", "campaign")
    with reading(SERVICE) as db:
        # One snapshot, so the participants match actualParticipants.
        store.read_one_snapshot(db)
        row = store.find_campaign(db, campaign_id)
        if row is None:
            raise NotFound("campaign", params["id"])
        participants = store.find_participants(db, campaign_id)
    body = campaign_view(row)
    if caller().holds("campaigns:write"):  # who joined is staff's business, not the public's
        body["participants"] = [{"userId": p.user_id, "joinedAt": p.joined_at} for p in participants]
    elif (customer := caller().customer_id) is not None:
        body["joined"] = any(p.user_id == customer for p in participants)
    return json_response(body)


@command("join-campaign", service=SERVICE, routes=["POST /campaigns/{id}/join"], auth=CUSTOMER, body=Joiner)
def join_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Take a seat in a campaign for a user; publish joined, and successful when it reaches its minimum."""
    campaign_id = path_uuid(params, "id", "campaign")
    user_id = customer_id_for(parse_body(request, Joiner).user_id, "userId")
    return json_response(campaign_view(flow.join_campaign(Join(campaign_id, user_id), uow)))
