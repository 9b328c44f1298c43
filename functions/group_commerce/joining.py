"""Joining a campaign: one seat per user, never more seats than maxParticipants.

Refusals are state conflicts, so they answer 409 (not 400): code "campaign_full" when every seat
is taken, "campaign_closed" when the deadline has passed or the campaign is expired or closed,
even if it also happens to be full. A user who already holds a seat gets 200 with the campaign
as it is: no second seat and no second event.

How a seat is taken, in one transaction: insert the (campaign, user) participant row (unique, so
a concurrent join by the same user waits for the first and then finds its row), then one
conditional UPDATE that adds a seat only while seats remain, the campaign is open and its
deadline is in the future. The UPDATE's row lock serialises the joins of one campaign; a refused
join rolls its participant row back. The join that brings actualParticipants to minParticipants
turns the campaign "successful" in that same UPDATE, so exactly one join tips it.
"""

from __future__ import annotations

import uuid
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from functions.group_commerce.rules import SUCCESSFUL, refusal_code
from functions.group_commerce.store import (
    CAMPAIGN_COLUMNS,
    campaign_contract,
    campaign_view,
    load_campaign,
    participant_ids,
    uuid_or_none,
)
from fusion.contracts import CampaignJoined, CampaignSuccessful
from fusion.declare import command
from fusion.uow import UnitOfWork
from fusion.web import ApiError, json_response, not_found, parse_body

SERVICE = "group-commerce"

TAKE_SEAT = f"""
    UPDATE group_commerce.campaigns
    SET actual_participants = actual_participants + 1,
        status = CASE WHEN actual_participants + 1 >= min_participants THEN 'successful' ELSE status END,
        tipped_at = CASE WHEN actual_participants + 1 = min_participants THEN now() ELSE tipped_at END
    WHERE id = :id
      AND actual_participants < max_participants
      AND status IN ('active', 'successful')
      AND expires_at > now()
    RETURNING {CAMPAIGN_COLUMNS}"""


class Joiner(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    user_id: StrictStr = Field(alias="userId", min_length=1, max_length=128)


def _claim_participant_row(uow: UnitOfWork, campaign_id: uuid.UUID, user_id: str) -> bool:
    """False when the user already holds a seat in this campaign."""
    row = uow.execute(
        "INSERT INTO group_commerce.participants (campaign_id, user_id) VALUES (:campaign_id, :user_id) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {"campaign_id": campaign_id, "user_id": user_id},
    ).first()
    return row is not None


def _refusal(uow: UnitOfWork, campaign_id: uuid.UUID) -> ApiError:
    state = uow.execute(
        "SELECT status, actual_participants, max_participants, expires_at <= now() AS deadline_passed "
        "FROM group_commerce.campaigns WHERE id = :id",
        {"id": campaign_id},
    ).one()
    code = refusal_code(state.status, state.deadline_passed)
    if code == "campaign_full":
        seats = f"{state.actual_participants} of {state.max_participants} seats taken"
        message = f"campaign {campaign_id} is full ({seats})"
    else:
        reason = "its deadline has passed" if state.deadline_passed else f"it is {state.status}"
        message = f"campaign {campaign_id} no longer takes participants: {reason}"
    return ApiError(409, message, code=code)


def _just_tipped(row: Any) -> bool:
    """Seats are added one at a time under the row lock, so only one join sees actual == min."""
    return bool(row.status == SUCCESSFUL and row.actual_participants == row.min_participants)


def _publish_join(uow: UnitOfWork, row: Any, user_id: str) -> None:
    campaign = campaign_contract(row)
    uow.publish("group-commerce.campaign.joined", subject=campaign.id,
                payload=CampaignJoined(campaign=campaign, user_id=user_id))
    if _just_tipped(row):
        # No other join of this campaign can commit before this transaction ends (row lock), so the
        # participants read here are exactly the actualParticipants seats.
        participants = participant_ids(uow.conn, row.id)
        uow.publish("group-commerce.campaign.successful", subject=campaign.id,
                    payload=CampaignSuccessful(campaign=campaign, participants=participants))


@command("join-campaign", service=SERVICE, routes=["POST /campaigns/{id}/join"], body=Joiner)
def join_campaign(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Take a seat in a campaign for a user; publish joined, and successful when it reaches its minimum."""
    campaign_id = uuid_or_none(params["id"])
    if campaign_id is None:
        raise not_found("campaign", params["id"])
    user_id = parse_body(request, Joiner).user_id
    if load_campaign(uow.conn, campaign_id) is None:
        raise not_found("campaign", params["id"])
    if not _claim_participant_row(uow, campaign_id, user_id):
        # Read again: a concurrent first join by this user may have committed while we waited.
        return json_response(campaign_view(load_campaign(uow.conn, campaign_id)))
    row = uow.execute(TAKE_SEAT, {"id": campaign_id}).first()
    if row is None:
        raise _refusal(uow, campaign_id)
    _publish_join(uow, row, user_id)
    return json_response(campaign_view(row))
