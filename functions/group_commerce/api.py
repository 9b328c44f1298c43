"""Group buying over HTTP: create campaigns, list them, read one with its participants, join one.

Joining holds a seat; the customer then pays for it with `POST /payments {"campaignId": …}` (a card
authorization: nothing is charged unless the group forms)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import flask
from pydantic import Field, StrictStr

from functions.group_commerce import flow, store
from functions.group_commerce.flow import Join, NewCampaign
from functions.group_commerce.rules import SEAT_STATUSES, STATUSES, leader_shown
from functions.group_commerce.store import SERVICE, CampaignRow, Participant
from fusion.auth import CUSTOMER, PUBLIC, caller, customer_id_for, staff
from fusion.declare import command, query
from fusion.errors import NotFound
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
    query_uuid,
    utc_now,
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
    held_seats: int = Field(description="Seats kept for joiners whose card authorization is still to come.")
    refunded_seats: int = Field(description="Seats charged, then refunded because their group order failed.")
    leader: str | None = Field(description="The first participant whose payment was authorized, masked.")
    seconds_left: int = Field(description="Until the deadline; 0 once it has passed.")
    status_reason: str | None = Field(description="Why a campaign was refused.")


class ParticipantView(View):
    """A seat in a campaign: who took it, when, and where its payment stands."""

    user_id: str
    joined_at: Instant
    status: Annotated[str, one_of(SEAT_STATUSES)]


class SeatView(View):
    """The caller's own seat: held until its card is authorized, then counted."""

    status: Annotated[str, one_of(SEAT_STATUSES)]
    joined_at: Instant
    hold_expires_at: Instant | None


class CampaignDetailView(CampaignView):
    """A campaign; staff (campaigns:write) also see who joined, a signed-in customer its own seat."""

    participants: list[ParticipantView] = Field(default_factory=list, description="Staff only, in joining order.")
    joined: bool = Field(default=False, description="Signed-in customers only: whether the caller holds a seat.")
    seat: SeatView | None = Field(default=None, description="Signed-in customers only: the caller's seat.")


def _view_fields(row: CampaignRow) -> dict[str, Any]:
    left = int((row.expires_at - utc_now()).total_seconds())
    return {**flow.campaign_contract(row).model_dump(), "held_seats": row.held_seats,
            "leader": leader_shown(row.leader), "seconds_left": max(left, 0), "status_reason": row.status_reason}


def campaign_view(row: CampaignRow) -> CampaignView:
    return CampaignView.model_validate(_view_fields(row))


def _seat_view(participant: Participant) -> SeatView:
    return SeatView(status=participant.status, joined_at=participant.joined_at,
                    hold_expires_at=participant.hold_expires_at)


def _detail_view(row: CampaignRow, participants: list[Participant]) -> CampaignDetailView:
    """What the caller may see of a campaign: who joined is staff's business, not the public's."""
    seen: dict[str, Any] = {}
    if caller().holds("campaigns:write"):
        seen["participants"] = [ParticipantView(user_id=p.user_id, joined_at=p.joined_at, status=p.status)
                                for p in participants]
    elif (customer := caller().customer_id) is not None:
        own = next((p for p in participants if p.user_id == customer), None)
        seen["joined"] = own is not None and own.status != "released"
        seen["seat"] = _seat_view(own) if own is not None else None
    return CampaignDetailView.model_validate({**_view_fields(row), **seen})


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
    product_id = query_uuid(request, "productId")
    with reading(SERVICE) as db:
        rows = store.campaign_page(db, page_of(request), status=status, product_id=product_id)
    return answer([campaign_view(row) for row in rows])


@query("get-campaign", service=SERVICE, routes=["GET /campaigns/{id}"], auth=PUBLIC, answers=CampaignDetailView)
def get_campaign(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One campaign with its participants, in the order they joined."""
    campaign_id = path_uuid(params, "id", "campaign")
    with reading(SERVICE, snapshot=True) as db:  # so the participants match actualParticipants
        row = store.find_campaign(db, campaign_id)
        if row is None:
            raise NotFound("campaign", params["id"])
        participants = store.find_participants(db, campaign_id)
    return answer(_detail_view(row, participants))


@command("close-campaign", service=SERVICE, routes=["POST /campaigns/{id}/close"], auth=staff("campaigns:write"),
         answers=CampaignView)
def close_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """End an open campaign now: closed if it reached its minimum, else expired (every authorization released)."""
    return answer(campaign_view(flow.close_now(path_uuid(params, "id", "campaign"), uow)))


class JoinedView(CampaignView):
    """The campaign joined, with the caller's seat: pay for it with POST /payments {"campaignId": …}."""

    seat: SeatView


@command("join-campaign", service=SERVICE, routes=["POST /campaigns/{id}/join"], auth=CUSTOMER, body=Joiner,
         answers=JoinedView)
def join_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Hold a seat in a campaign for the signed-in customer until its card is authorized (POST /seat-payments)."""
    campaign_id = path_uuid(params, "id", "campaign")
    user_id = customer_id_for(parse_body(request, Joiner).user_id, "userId")
    joined = flow.join_campaign(Join(campaign_id, user_id), uow)
    return answer(JoinedView.model_validate({**_view_fields(joined.campaign), "seat": _seat_view(joined.seat)}))
