"""Group buying's use cases: create a campaign, take a seat in one, end one at its deadline.

Joining: one seat per user, never more seats than maxParticipants. Refusals are state conflicts,
so they answer 409 (not 400): code "campaign_full" when every seat is taken, "campaign_closed"
when the deadline has passed or the campaign is expired or closed, even if it also happens to be
full. A user who already holds a seat gets 200 with the campaign as it is: no second seat and no
second event.

How a seat is taken, in one transaction: insert the (campaign, user) participant row (unique, so
a concurrent join by the same user waits for the first and then finds its row), then one
conditional UPDATE that adds a seat only while seats remain, the campaign is open and its
deadline is in the future. The UPDATE's row lock serialises the joins of one campaign; a refused
join rolls its participant row back. The join that brings actualParticipants to minParticipants
turns the campaign "successful" in that same UPDATE, so exactly one join tips it.

The deadline: below its minimum a campaign expires (group-commerce.campaign.expired, with the
participants so they can be told); at or above it the campaign closes to new joins
(group-commerce.campaign.closed). Each campaign ends in its own transaction, which locks it only
while it is still open and past its deadline, so a second sweep, a concurrent sweep or a retried
ping ends nothing twice.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field, field_validator

from functions.group_commerce import store
from functions.group_commerce.rules import (
    EXPIRED,
    SUCCESSFUL,
    closing_status,
    group_price_minor,
    parse_deadline,
    refusal_code,
)
from functions.group_commerce.store import CampaignRow
from fusion.contracts import (
    Campaign,
    CampaignClosed,
    CampaignCreated,
    CampaignExpired,
    CampaignJoined,
    CampaignSuccessful,
)
from fusion.errors import Conflict, Invalid, NotFound, Refused
from fusion.money import to_decimal
from fusion.uow import UnitOfWork
from fusion.web import Amount, Body, WholeNumber, utc_now

MAX_SEATS = 100_000
MAX_DISCOUNT_PERCENT = 90  # deeper discounts are giveaways, which need a rule of their own


class NewCampaign(Body):
    product_id: uuid.UUID
    min_participants: WholeNumber = Field(ge=1, le=MAX_SEATS)
    max_participants: WholeNumber = Field(ge=1, le=MAX_SEATS)
    discount_percentage: Amount = Field(gt=0, le=MAX_DISCOUNT_PERCENT, decimal_places=2)
    expires_at: datetime

    @field_validator("product_id", mode="before")
    @classmethod
    def uuid_string(cls, value: object) -> uuid.UUID:
        if isinstance(value, str):
            with suppress(ValueError):
                return uuid.UUID(value)
        raise ValueError(f"must be a product id (a UUID), got {value!r}")

    @field_validator("expires_at", mode="before")
    @classmethod
    def iso_8601(cls, value: object) -> datetime:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 timestamp string, e.g. 2030-01-31T18:00:00Z")
        try:
            return parse_deadline(value)
        except ValueError:
            raise ValueError(f"must be an ISO 8601 timestamp, got {value!r}") from None


@dataclass(frozen=True)
class Join:
    campaign_id: uuid.UUID
    user_id: str


def campaign_contract(row: CampaignRow) -> Campaign:
    """A campaign as events carry it (and, dumped, as the API returns it)."""
    return Campaign(
        id=str(row.id), product_id=str(row.product_id), sku=row.sku, status=row.status,
        min_participants=row.min_participants, max_participants=row.max_participants,
        actual_participants=row.actual_participants, discount_percentage=row.discount_percentage,
        original_price=to_decimal(row.original_price_minor, row.currency),
        group_price=to_decimal(row.group_price_minor, row.currency),
        currency=row.currency, expires_at=row.expires_at, created_at=row.created_at,
    )


# creating


def create_campaign(campaign: NewCampaign, uow: UnitOfWork) -> CampaignRow:
    """Open a campaign at the group price fixed now, and publish group-commerce.campaign.created."""
    _check_seats_and_deadline(campaign)
    product = store.find_product(uow, campaign.product_id)
    if product is None:
        raise Invalid("productId", f"unknown product {campaign.product_id}")
    price_minor = group_price_minor(product.price_minor, campaign.discount_percentage)
    if price_minor == 0:
        raise Refused("the group price would be nothing; nothing is given away by default", code="zero_price",
                      field="discountPercentage")
    row = store.insert_campaign(
        uow, product, min_participants=campaign.min_participants,
        max_participants=campaign.max_participants, discount_percentage=campaign.discount_percentage,
        group_price_minor=price_minor, expires_at=campaign.expires_at,
    )
    uow.publish("group-commerce.campaign.created", subject=str(row.id),
                payload=CampaignCreated(campaign=campaign_contract(row)))
    return row


def _check_seats_and_deadline(campaign: NewCampaign) -> None:
    """The rules that involve more than one field, or the clock."""
    if campaign.max_participants < campaign.min_participants:
        minimum = campaign.min_participants
        raise Invalid("maxParticipants", f"must be at least minParticipants ({minimum})")
    if campaign.expires_at <= utc_now():
        raise Invalid("expiresAt", "must be in the future")


# joining


def join_campaign(join: Join, uow: UnitOfWork) -> CampaignRow:
    """Take a seat for the user; publish joined, and successful when the seat reaches the minimum."""
    _existing_campaign(uow, join.campaign_id)
    if not store.claim_participant_row(uow, join.campaign_id, join.user_id):
        # Read again: a concurrent first join by this user may have committed while we waited.
        return _existing_campaign(uow, join.campaign_id)
    row = store.take_seat(uow, join.campaign_id)
    if row is None:
        raise _refusal(uow, join.campaign_id)
    _publish_join(uow, row, join.user_id)
    return row


def _existing_campaign(uow: UnitOfWork, campaign_id: uuid.UUID) -> CampaignRow:
    row = store.find_campaign(uow, campaign_id)
    if row is None:
        raise NotFound("campaign", campaign_id)
    return row


def _refusal(uow: UnitOfWork, campaign_id: uuid.UUID) -> Conflict:
    state = store.seat_state(uow, campaign_id)
    code = refusal_code(state.status, state.deadline_passed)
    if code == "campaign_full":
        seats = f"{state.actual_participants} of {state.max_participants} seats taken"
        message = f"campaign {campaign_id} is full ({seats})"
    else:
        reason = "its deadline has passed" if state.deadline_passed else f"it is {state.status}"
        message = f"campaign {campaign_id} no longer takes participants: {reason}"
    return Conflict(message, code=code)


def _just_tipped(row: CampaignRow) -> bool:
    """Seats are added one at a time under the row lock, so only one join sees actual == min."""
    return row.status == SUCCESSFUL and row.actual_participants == row.min_participants


def _publish_join(uow: UnitOfWork, row: CampaignRow, user_id: str) -> None:
    campaign = campaign_contract(row)
    uow.publish("group-commerce.campaign.joined", subject=campaign.id,
                payload=CampaignJoined(campaign=campaign, user_id=user_id))
    if _just_tipped(row):
        # No other join of this campaign can commit before this transaction ends (row lock), so the
        # participants read here are exactly the actualParticipants seats.
        participants = store.participant_ids(uow, row.id)
        uow.publish("group-commerce.campaign.successful", subject=campaign.id,
                    payload=CampaignSuccessful(campaign=campaign, participants=participants))


# the deadline


def end_campaign(campaign_id: uuid.UUID, uow: UnitOfWork) -> str | None:
    """End one campaign past its deadline; its new status, or None when it was already ended."""
    due = store.lock_due_campaign(uow, campaign_id)
    if due is None:
        return None
    status = closing_status(due.actual_participants, due.min_participants)
    campaign = campaign_contract(store.mark_ended(uow, campaign_id, status))
    participants = store.participant_ids(uow, campaign_id)
    if status == EXPIRED:
        uow.publish("group-commerce.campaign.expired", subject=campaign.id,
                    payload=CampaignExpired(campaign=campaign, participants=participants))
    else:
        uow.publish("group-commerce.campaign.closed", subject=campaign.id,
                    payload=CampaignClosed(campaign=campaign, participants=participants))
    return status
