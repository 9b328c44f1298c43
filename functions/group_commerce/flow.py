"""Group buying's use cases: create a campaign, hold a seat, count it once its card is authorized,
charge the group when it forms, and end a campaign at its deadline.

Money: a seat is paid by a card authorization taken at join (a Stripe PaymentIntent with manual
capture, created by payments when it hears group-commerce.seat.held). Nobody is charged while the
campaign is below its minimum. The seat that brings the count to the minimum tips the campaign:
every counted seat is confirmed (group-commerce.seat.confirmed, one event per seat), payments
captures each, and each captured seat becomes a paid group order. A seat counted after the tip is
confirmed at once. A campaign that misses its minimum releases every seat (group-commerce.seat.released):
payments cancels the authorizations, so nothing is charged and nothing needs refunding.

Stock: a new campaign is "pending" until inventory holds the stock of all its seats
(inventory.campaign.held → "active"; inventory.campaign.refused → "refused"), so a group that forms
never fails for stock.

Joining: one seat per user; held and counted seats together never exceed maxParticipants, so nobody is
asked to pay for a seat that is not there. A held seat counts only once payments reports its
authorization; a declined card, or a hold whose card is not authorized within SEAT_HOLD_SECONDS,
frees the seat (the user may join again). Refusals are state conflicts (409): "campaign_full",
"campaign_closed" (deadline passed, expired or closed, even if also full), "campaign_not_open"
(still pending, or refused) and "open_seat_limit" (the customer holds seats in CUSTOMER_OPEN_SEATS
open campaigns already). A user who already holds a seat gets the campaign as it is.

Locking: every change to a campaign's seats first locks the campaign row, so seats are counted one
at a time and exactly one seat tips a campaign. The deadline ends each campaign in its own
transaction, which locks it only while it is still open and past its deadline, so a second sweep, a
concurrent sweep or a retried ping ends nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field, field_validator

from functions.group_commerce import store
from functions.group_commerce.rules import (
    ACTIVE,
    AUTHORIZED,
    CAPTURED,
    CONFIRMED,
    EXPIRED,
    FAILED,
    HELD,
    PENDING,
    REFUNDED,
    REFUSED,
    RELEASED,
    SUCCESSFUL,
    closing_status,
    group_price_minor,
    parse_deadline,
    refusal_code,
)
from functions.group_commerce.store import CampaignRow, Participant
from fusion import catalog_lookup
from fusion.config import settings
from fusion.contracts import (
    Campaign,
    CampaignClosed,
    CampaignCreated,
    CampaignExpired,
    CampaignJoined,
    CampaignSuccessful,
    ProductCreated,
    ProductUpdated,
    SeatConfirmed,
    SeatHeld,
    SeatReleased,
)
from fusion.errors import Conflict, Invalid, NotFound, Refused, Unavailable
from fusion.money import to_decimal, to_minor
from fusion.uow import UnitOfWork
from fusion.web import Amount, Body, WholeNumber, utc_now

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Joined:
    """The campaign as the join left it, and the joiner's seat."""

    campaign: CampaignRow
    seat: Participant


@dataclass(frozen=True)
class StockOutcome:
    """What inventory did with a new campaign's stock: held it all, or could not (`reason`)."""

    campaign_id: uuid.UUID
    held: bool
    reason: str | None = None


@dataclass(frozen=True)
class SeatPaymentNews:
    """What payments reports about one seat's money.

    `outcome`: authorized | declined | captured | capture_failed | refunded.
    """

    campaign_id: uuid.UUID
    user_id: str
    outcome: str
    reason: str | None = None


def campaign_contract(row: CampaignRow) -> Campaign:
    """A campaign as events carry it (and, dumped, as the API returns it)."""
    return Campaign(
        id=str(row.id), product_id=str(row.product_id), sku=row.sku, status=row.status,
        min_participants=row.min_participants, max_participants=row.max_participants,
        actual_participants=row.actual_participants, discount_percentage=row.discount_percentage,
        original_price=to_decimal(row.original_price_minor, row.currency),
        group_price=to_decimal(row.group_price_minor, row.currency),
        currency=row.currency, expires_at=row.expires_at, created_at=row.created_at, leader=row.leader,
        refunded_seats=row.refunded_seats,
    )


# creating


def create_campaign(campaign: NewCampaign, uow: UnitOfWork) -> CampaignRow:
    """Open a campaign at the group price fixed now, and publish group-commerce.campaign.created."""
    _check_seats_and_deadline(campaign)
    product = store.find_product(uow, campaign.product_id) or _ask_catalog(uow, campaign.product_id)
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


def _ask_catalog(uow: UnitOfWork, product_id: uuid.UUID) -> store.Product | None:
    """A product whose product.created has not arrived yet, from the catalog itself, kept in the copies;
    None when the catalog has no such product (Unavailable when it cannot answer)."""
    found = catalog_lookup.product_by_id(product_id)
    if found is None:
        return None
    try:
        product = product_copy(found)
    except ValueError as exc:
        raise Unavailable(f"the catalog's product {product_id} cannot be read: {exc}",
                          code="catalog_unavailable") from None
    store.add_product(uow, product, found.price_set_at)
    return store.find_product(uow, product_id)


def product_copy(product: ProductCreated | ProductUpdated) -> store.Product:
    """The copy group buying keeps of a product the catalog announced; ValueError (a MoneyError for the price)
    when its id is not a UUID or its currency cannot express its price."""
    return store.Product(id=uuid.UUID(product.id), sku=product.sku,
                         price_minor=to_minor(product.price, product.currency),
                         currency=product.currency.strip().upper())


def _check_seats_and_deadline(campaign: NewCampaign) -> None:
    """The rules that involve more than one field, or the clock."""
    if campaign.max_participants < campaign.min_participants:
        minimum = campaign.min_participants
        raise Invalid("maxParticipants", f"must be at least minParticipants ({minimum})")
    now = utc_now()
    if campaign.expires_at <= now:
        raise Invalid("expiresAt", "must be in the future")
    longest = settings().campaign_max_days
    if campaign.expires_at > now + timedelta(days=longest):
        # Seats are paid by card authorizations, which Stripe lets lapse after seven days.
        raise Invalid("expiresAt", f"must be within {longest} days: seats' card authorizations must still be "
                                   "capturable at the deadline")


# the campaign's stock


def settle_stock(outcome: StockOutcome, uow: UnitOfWork) -> CampaignRow | None:
    """A pending campaign opens once its stock is held, or is refused; None when it was not pending."""
    if outcome.held:
        return store.leave_pending(uow, outcome.campaign_id, ACTIVE)
    row = store.leave_pending(uow, outcome.campaign_id, REFUSED, outcome.reason)
    if row is not None:
        log.warning("campaign %s refused: %s", outcome.campaign_id, outcome.reason)
    return row


# joining


def join_campaign(join: Join, uow: UnitOfWork) -> Joined:
    """Hold a seat for the user and publish group-commerce.seat.held, so payments asks for its authorization."""
    _existing_campaign(uow, join.campaign_id)
    store.serialise_joins_of(uow, join.user_id)
    earlier = store.find_participant(uow, join.campaign_id, join.user_id)
    if earlier is None or earlier.status == RELEASED:
        _check_open_seat_limit(uow, join.user_id)
    seat = store.claim_participant_row(uow, join.campaign_id, join.user_id, settings().seat_hold_seconds)
    if seat is None:
        # Read again: a concurrent first join by this user may have committed while we waited.
        return Joined(_existing_campaign(uow, join.campaign_id), _seat_of(uow, join))
    row = store.hold_seat(uow, join.campaign_id)
    if row is None:
        raise _refusal(uow, join.campaign_id)
    uow.publish("group-commerce.seat.held", subject=str(row.id),
                payload=SeatHeld(campaign=campaign_contract(row), user_id=join.user_id,
                                 hold_expires_at=seat.hold_expires_at or utc_now()))
    return Joined(row, seat)


def _seat_of(uow: UnitOfWork, join: Join) -> Participant:
    seat = store.find_participant(uow, join.campaign_id, join.user_id)
    if seat is None:  # the claim found this row, in this transaction
        raise RuntimeError(f"campaign {join.campaign_id}: the seat of {join.user_id} cannot be read")
    return seat


def _check_open_seat_limit(uow: UnitOfWork, user_id: str) -> None:
    limit = settings().customer_open_seats
    held = store.open_seats_of(uow, user_id)
    if held >= limit:
        raise Conflict(f"customer {user_id} already holds seats in {held} open campaigns, the most allowed; "
                       "wait for one to end", code="open_seat_limit")


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
        waiting = f", {state.held_seats} waiting for payment" if state.held_seats else ""
        message = f"campaign {campaign_id} is full ({seats}{waiting})"
    elif code == "campaign_not_open":
        message = f"campaign {campaign_id} does not take participants yet: its stock is still being set aside"
    else:
        reason = "its deadline has passed" if state.deadline_passed else f"it is {state.status}"
        message = f"campaign {campaign_id} no longer takes participants: {reason}"
    return Conflict(message, code=code)


# the seats' money


def follow_seat_payment(news: SeatPaymentNews, uow: UnitOfWork) -> None:
    """Move a seat as its payment moved; a repeated or stale report changes nothing."""
    campaign = store.lock_campaign(uow, news.campaign_id)
    if campaign is None:
        log.warning("payment news for unknown campaign %s ignored", news.campaign_id)
        return
    if news.outcome == "authorized":
        _count_seat(uow, campaign, news.user_id)
    elif news.outcome == "declined":
        _free_seat(uow, campaign, news.user_id, news.reason or "declined", notify_payments=False)
    elif news.outcome == "captured":
        store.move_seat(uow, campaign.id, news.user_id, was=(CONFIRMED,), becomes=CAPTURED)
    elif news.outcome == "capture_failed":
        _lose_seat(uow, campaign, news.user_id, news.reason)
    elif news.outcome == "refunded" and store.move_seat(uow, campaign.id, news.user_id, was=(CAPTURED, CONFIRMED),
                                                         becomes=REFUNDED, reason=news.reason):
        store.change_seat_counts(uow, campaign.id, refunded=1)


def _count_seat(uow: UnitOfWork, campaign: CampaignRow, user_id: str) -> None:
    """An authorized seat counts, and may tip the campaign; one the campaign no longer takes is released."""
    if not store.move_seat(uow, campaign.id, user_id, was=(HELD,), becomes=AUTHORIZED):
        seat = store.find_participant(uow, campaign.id, user_id)
        if seat is not None and seat.status == RELEASED:
            # Authorized after its hold ran out or its campaign ended: the card must not stay held.
            _publish_release(uow, campaign.id, user_id, "authorized_after_release")
        return
    counted = store.count_seat(uow, campaign.id, user_id)
    if counted is None:
        store.move_seat(uow, campaign.id, user_id, was=(AUTHORIZED,), becomes=RELEASED, reason="campaign_ended")
        store.change_seat_counts(uow, campaign.id, held=-1)
        _publish_release(uow, campaign.id, user_id, "campaign_ended")
        return
    contract = campaign_contract(counted)
    uow.publish("group-commerce.campaign.joined", subject=contract.id,
                payload=CampaignJoined(campaign=contract, user_id=user_id))
    if _just_tipped(counted):
        _tip(uow, counted)
    elif counted.status == SUCCESSFUL:
        _confirm_seats(uow, counted, [user_id], was=AUTHORIZED)


def _just_tipped(row: CampaignRow) -> bool:
    """Seats are counted one at a time under the campaign's lock, so only one sees actual == min."""
    return row.status == SUCCESSFUL and row.actual_participants == row.min_participants


def _tip(uow: UnitOfWork, row: CampaignRow) -> None:
    """The group formed: announce it with its participants, and confirm every counted seat for capture."""
    participants = store.counted_participant_ids(uow, row.id)
    contract = campaign_contract(row)
    uow.publish("group-commerce.campaign.successful", subject=contract.id,
                payload=CampaignSuccessful(campaign=contract, participants=participants))
    confirmed = store.move_seats(uow, row.id, was=AUTHORIZED, becomes=CONFIRMED)
    for user_id in confirmed:
        uow.publish("group-commerce.seat.confirmed", subject=contract.id,
                    payload=SeatConfirmed(campaign=contract, user_id=user_id))


def _confirm_seats(uow: UnitOfWork, row: CampaignRow, user_ids: list[str], *, was: str) -> None:
    contract = campaign_contract(row)
    for user_id in user_ids:
        if store.move_seat(uow, row.id, user_id, was=(was,), becomes=CONFIRMED):
            uow.publish("group-commerce.seat.confirmed", subject=contract.id,
                        payload=SeatConfirmed(campaign=contract, user_id=user_id))


def _free_seat(uow: UnitOfWork, campaign: CampaignRow, user_id: str, reason: str, *,
               notify_payments: bool) -> bool:
    """A held seat is given up (its card declined, or its hold ran out); False when it was not held."""
    if not store.move_seat(uow, campaign.id, user_id, was=(HELD,), becomes=RELEASED, reason=reason):
        return False  # an ended campaign released its held seats when it ended
    store.change_seat_counts(uow, campaign.id, held=-1)
    if notify_payments:
        _publish_release(uow, campaign.id, user_id, reason)
    return True


def _lose_seat(uow: UnitOfWork, campaign: CampaignRow, user_id: str, reason: str | None) -> None:
    """A confirmed seat whose charge failed no longer counts; the others are untouched, and its place is free."""
    if store.move_seat(uow, campaign.id, user_id, was=(CONFIRMED,), becomes=FAILED, reason=reason):
        store.change_seat_counts(uow, campaign.id, counted=-1)
        log.warning("campaign %s: the charge of %s's seat failed (%s); the seat is free again",
                    campaign.id, user_id, reason)


def _publish_release(uow: UnitOfWork, campaign_id: uuid.UUID, user_id: str, reason: str) -> None:
    uow.publish("group-commerce.seat.released", subject=str(campaign_id),
                payload=SeatReleased(campaign_id=str(campaign_id), user_id=user_id, reason=reason))


def release_due_hold(campaign_id: uuid.UUID, user_id: str, uow: UnitOfWork) -> bool:
    """Free a seat whose card was not authorized in time; False when it was settled meanwhile."""
    campaign = store.lock_campaign(uow, campaign_id)
    if campaign is None:
        return False
    seat = store.find_participant(uow, campaign_id, user_id)
    if seat is None or seat.status != HELD or seat.hold_expires_at is None or seat.hold_expires_at > utc_now():
        return False
    return _free_seat(uow, campaign, user_id, "hold_expired", notify_payments=True)


# the deadline


def close_now(campaign_id: uuid.UUID, uow: UnitOfWork) -> CampaignRow:
    """Staff end an open campaign before its deadline, as the deadline would: closed at or above its
    minimum, expired (nobody charged) below it."""
    row = _existing_campaign(uow, campaign_id)
    if not store.bring_deadline_forward(uow, campaign_id):
        raise Conflict(f"campaign {campaign_id} is {row.status}: only an active or successful campaign can be closed",
                       code="campaign_not_open" if row.status == PENDING else "campaign_closed")
    end_campaign(campaign_id, uow)
    return _existing_campaign(uow, campaign_id)


def end_campaign(campaign_id: uuid.UUID, uow: UnitOfWork) -> str | None:
    """End one campaign past its deadline; its new status, or None when it was already ended.

    Seats still waiting for their authorization are released either way; below the minimum the
    counted seats are released too (their authorizations cancelled: nobody is charged).
    """
    due = store.lock_due_campaign(uow, campaign_id)
    if due is None:
        return None
    status = closing_status(due.actual_participants, due.min_participants, due.tipped)
    campaign = campaign_contract(store.mark_ended(uow, campaign_id, status))
    waiting = store.move_seats(uow, campaign_id, was=HELD, becomes=RELEASED, reason="hold_ended")
    participants = store.counted_participant_ids(uow, campaign_id)
    if status == EXPIRED:
        released = store.move_seats(uow, campaign_id, was=AUTHORIZED, becomes=RELEASED, reason="campaign_expired")
        uow.publish("group-commerce.campaign.expired", subject=campaign.id,
                    payload=CampaignExpired(campaign=campaign, participants=released))
        waiting += released
    else:
        uow.publish("group-commerce.campaign.closed", subject=campaign.id,
                    payload=CampaignClosed(campaign=campaign, participants=participants))
    for user_id in waiting:
        _publish_release(uow, campaign_id, user_id, "campaign_expired" if status == EXPIRED else "campaign_closed")
    return status
