"""The deadline sweep: every minute, end the campaigns whose deadline has passed.

Below its minimum a campaign expires (group-commerce.campaign.expired, with the participants so
they can be told); at or above it the campaign closes to new joins (group-commerce.campaign.closed).
Each campaign ends in its own transaction, which locks it only while it is still open and past
its deadline, so a second sweep, a concurrent sweep or a retried ping ends nothing twice.
"""

from __future__ import annotations

import logging
import uuid

from functions.group_commerce.rules import EXPIRED, closing_status
from functions.group_commerce.store import CAMPAIGN_COLUMNS, campaign_contract, participant_ids
from fusion.binding import Event
from fusion.contracts import CampaignClosed, CampaignExpired
from fusion.db import pool
from fusion.declare import scheduled
from fusion.uow import unit_of_work

SERVICE = "group-commerce"
BATCH = 100
log = logging.getLogger(__name__)


def _due_campaigns() -> list[uuid.UUID]:
    with pool().connect() as conn:
        return list(conn.execute(
            "SELECT id FROM group_commerce.campaigns WHERE status IN ('active', 'successful') "
                 "AND expires_at <= now() ORDER BY expires_at, id LIMIT :limit",
            {"limit": BATCH},
        ).scalars())


def end_campaign(campaign_id: uuid.UUID) -> str | None:
    """End one campaign past its deadline; its new status, or None when it was already ended."""
    with unit_of_work(SERVICE) as uow:
        due = uow.execute(
            "SELECT actual_participants, min_participants FROM group_commerce.campaigns "
            "WHERE id = :id AND status IN ('active', 'successful') AND expires_at <= now() FOR UPDATE",
            {"id": campaign_id},
        ).first()
        if due is None:
            return None
        status = closing_status(due.actual_participants, due.min_participants)
        row = uow.execute(
            f"UPDATE group_commerce.campaigns SET status = :status, ended_at = now() WHERE id = :id "
            f"RETURNING {CAMPAIGN_COLUMNS}",
            {"id": campaign_id, "status": status},
        ).one()
        campaign = campaign_contract(row)
        participants = participant_ids(uow.conn, campaign_id)
        if status == EXPIRED:
            uow.publish("group-commerce.campaign.expired", subject=campaign.id,
                        payload=CampaignExpired(campaign=campaign, participants=participants))
        else:
            uow.publish("group-commerce.campaign.closed", subject=campaign.id,
                        payload=CampaignClosed(campaign=campaign, participants=participants))
        return status


@scheduled("close-expired-campaigns", service=SERVICE, schedule="* * * * *")
def close_expired_campaigns(event: Event) -> None:
    """End every campaign past its deadline: expired below its minimum, closed at or above it."""
    ended = 0
    while due := _due_campaigns():
        ended += sum(end_campaign(campaign_id) is not None for campaign_id in due)
        if len(due) < BATCH:
            break
    if ended:
        log.info("ended %d campaign(s) past their deadline", ended)
