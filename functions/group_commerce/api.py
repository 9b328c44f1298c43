"""Group buying over HTTP: create campaigns, list them, read one with its participants, join one."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import flask
from pydantic import Field, StrictStr

from functions.group_commerce import flow, store
from functions.group_commerce.flow import Join, NewCampaign
from functions.group_commerce.rules import STATUSES
from functions.group_commerce.store import SERVICE, CampaignRow, Participant
from fusion.auth import CUSTOMER, PUBLIC, caller, customer_id_for, staff
from fusion.declare import command, query
from fusion.errors import Invalid, NotFound
from fusion.listing import page_of
from fusion.uow import UnitOfWork, reading
from fusion.web import (
    Body,
    Instant,
    Number,
    Param,
    View,
    answer,
    choice_param,
    one_of,
    parse_body,
    path_uuid,
    query_choice,
    query_text,
)


class Joiner(Body):
    # The signed-in customer; a customer may name only itself (the token is what counts).
    user_id: StrictStr | None = Field(default=None, min_length=1, max_length=128)


class CampaignView(View):
    """A group-buying campaign: the fields its events carry."""

    id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    status: Annotated[str, one_of(STATUSES)]
    min_participants: int
    max_participants: int
    actual_participants: int
    discount_percentage: Number
    original_price: Number
    group_price: Number
    currency: str
    expires_at: Instant
    created_at: Instant


class ParticipantView(View):
    """A seat in a campaign: who took it and when."""

    user_id: str
    joined_at: Instant


class CampaignDetailView(CampaignView):
    """A campaign; staff (campaigns:write) also see who joined, a signed-in customer whether it did."""

    participants: list[ParticipantView] = Field(default_factory=list, description="Staff only, in joining order.")
    joined: bool = Field(default=False, description="Signed-in customers only: whether the caller holds a seat.")


def campaign_view(row: CampaignRow) -> CampaignView:
    return CampaignView.model_validate(flow.campaign_contract(row).model_dump())


def _detail_view(row: CampaignRow, participants: list[Participant]) -> CampaignDetailView:
    """What the caller may see of a campaign: who joined is staff's business, not the public's."""
    seen: dict[str, Any] = {}
    if caller().holds("campaigns:write"):
        seen["participants"] = [ParticipantView(user_id=p.user_id, joined_at=p.joined_at) for p in participants]
    elif (customer := caller().customer_id) is not None:
        seen["joined"] = any(p.user_id == customer for p in participants)
    return CampaignDetailView.model_validate({**flow.campaign_contract(row).model_dump(), **seen})


def _product_filter(request: flask.Request) -> uuid.UUID | None:
    raw = query_text(request, "productId", 64)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid("productId", f"must be a UUID, got {raw!r}") from None


@command("create-campaign", service=SERVICE, routes=["POST /campaigns"], auth=staff("campaigns:write"),
         body=NewCampaign, answers={201: CampaignView})
def create_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Create a group-buying campaign for a product and publish group-commerce.campaign.created."""
    campaign = campaign_view(flow.create_campaign(parse_body(request, NewCampaign), uow))
    return answer(campaign, 201, headers={"Location": f"/campaigns/{campaign.id}"})


@query("list-campaigns", service=SERVICE, routes=["GET /campaigns"], auth=PUBLIC,
       params=[choice_param("status", STATUSES),
               Param("productId", {"type": "string", "format": "uuid", "maxLength": 64}), "limit", "offset"],
       answers=list[CampaignView])
def list_campaigns(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List campaigns, oldest first: status, productId, limit, offset."""
    status = query_choice(request, "status", STATUSES)
    product_id = _product_filter(request)
    with reading(SERVICE) as db:
        rows = store.campaign_page(db, page_of(request), status=status, product_id=product_id)
    return answer([campaign_view(row) for row in rows])


@query("get-campaign", service=SERVICE, routes=["GET /campaigns/{id}"], auth=PUBLIC, answers=CampaignDetailView)
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
    return answer(_detail_view(row, participants))


@command("join-campaign", service=SERVICE, routes=["POST /campaigns/{id}/join"], auth=CUSTOMER, body=Joiner,
         answers=CampaignView)
def join_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Take a seat in a campaign for a user; publish joined, and successful when it reaches its minimum."""
    campaign_id = path_uuid(params, "id", "campaign")
    user_id = customer_id_for(parse_body(request, Joiner).user_id, "userId")
    return answer(campaign_view(flow.join_campaign(Join(campaign_id, user_id), uow)))
