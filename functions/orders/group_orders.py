"""Group orders: every seat of a successful campaign becomes one order at the campaign's group price.

When a campaign tips (group-commerce.campaign.successful) each listed participant gets an order;
a user who joins a campaign that is already successful (group-commerce.campaign.joined carrying a
successful campaign) gets one at once. The tipping join is announced by both events, and events
are delivered at least once, so the order id is derived from the campaign and the user and the
order is only inserted when absent: each seat yields exactly one order, whichever event arrives
first and however often. A group order carries its campaign id and then runs the normal saga
(order.created, stock reservation, payment, shipping) like any other order.
"""

from __future__ import annotations

import uuid

from functions.orders.store import OrderLine, place_order
from fusion.binding import Event
from fusion.contracts import Campaign, CampaignJoined, CampaignSuccessful
from fusion.declare import UnprocessableEvent, event_handler, payload_of
from fusion.money import MoneyError, to_minor
from fusion.registry import ORDER_EVENTS
from fusion.uow import UnitOfWork

SERVICE = "orders"
# Fixed forever: changing it would give a redelivered event new order ids, hence duplicate orders.
GROUP_ORDER_NAMESPACE = uuid.UUID("7591eb19-5e09-52d0-bbe0-50f6c7b0b714")
SUCCESSFUL = "successful"


def group_order_id(campaign_id: str, user_id: str) -> str:
    """The one order id of a user's seat in a campaign (campaign ids are UUIDs, so the key is unambiguous)."""
    return str(uuid.uuid5(GROUP_ORDER_NAMESPACE, f"{campaign_id}/{user_id}"))


def _group_line(campaign: Campaign) -> OrderLine:
    try:
        price_minor = to_minor(campaign.group_price, campaign.currency)
    except MoneyError as exc:
        raise UnprocessableEvent(f"campaign {campaign.id} has an invalid group price: {exc}") from None
    return OrderLine(sku=campaign.sku, quantity=1, price_minor=price_minor)


def place_group_orders(uow: UnitOfWork, campaign: Campaign, user_ids: list[str]) -> None:
    """One order per user at the group price; orders that exist already are left as they are."""
    line = _group_line(campaign)
    for user_id in user_ids:
        place_order(uow, user_id, [line], campaign.currency, campaign_id=campaign.id,
                    order_id=group_order_id(campaign.id, user_id))


@event_handler("create-group-orders", service=SERVICE, topics=["group-commerce.campaign.successful"],
               delivery=ORDER_EVENTS)
def create_group_orders(event: Event, uow: UnitOfWork) -> None:
    """A campaign tipped: an order at the group price for every participant."""
    tipped = payload_of(event, CampaignSuccessful)
    place_group_orders(uow, tipped.campaign, tipped.participants)


@event_handler("create-late-joiner-order", service=SERVICE, topics=["group-commerce.campaign.joined"],
               delivery=ORDER_EVENTS)
def create_late_joiner_order(event: Event, uow: UnitOfWork) -> None:
    """Someone joined a campaign that is already successful: their order at once."""
    joined = payload_of(event, CampaignJoined)
    if joined.campaign.status == SUCCESSFUL:
        place_group_orders(uow, joined.campaign, [joined.user_id])
