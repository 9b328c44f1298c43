"""The n8n notification workflows: one per notification topic, as `n8n import:workflow` reads them.

Each starts with a Webhook node at `/webhook/<path>/<token>` that answers 204 with no body (the
Kafka Broker counts a 2xx with a body that is not a CloudEvent as a failed delivery), composes the
message from the CloudEvent (binary mode: payload in the body, attributes in `ce-*` headers) and
posts it to NOTIFICATIONS_URL, the delivery channel of the environment (mail or chat gateway).

n8n runs with N8N_BLOCK_ENV_ACCESS_IN_NODE=true, so the workflows cannot read `$env`: what they
need from the environment is written as `$(NAME)` and filled in by deploy/n8n/import.sh when it
imports them. A Trigger cannot send a header, so the webhook's secret is the token in its path.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

_NAMESPACE = uuid.UUID("6f1f6f0e-4d0b-4c1e-9a55-0f3c2a6b7d10")
WEBHOOK_TOKEN = "N8N_WEBHOOK_PATH_TOKEN"  # a key of the n8n Secret
NOTIFICATIONS_URL = "NOTIFICATIONS_URL"
PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
# What import.sh fills into the workflows (and the deploy into the Triggers, for the token).
FILLED_AT_IMPORT = (WEBHOOK_TOKEN, NOTIFICATIONS_URL, PUBLIC_BASE_URL)


def filled(name: str) -> str:
    """The placeholder import.sh replaces by the value of the environment variable `name`."""
    return f"$({name})"


@dataclass(frozen=True)
class Notification:
    topic: str
    title: str  # the workflow's name
    path: str  # the webhook path: /webhook/<path>
    audience: str  # n8n expression (an object): whom to tell
    subject: str  # n8n expression
    message: str  # n8n expression


NOTIFICATIONS: tuple[Notification, ...] = (
    Notification(
        topic="order.confirmed", title="Order confirmed", path="order-confirmed",
        audience="={{ { customerId: $json.body.customerId, orderId: $json.body.orderId } }}",
        subject="=Your order {{ $json.body.orderId }} is confirmed",
        message="=We have reserved everything in order {{ $json.body.orderId }}. "
                "Total: {{ $json.body.total }} {{ $json.body.currency }}.",
    ),
    Notification(
        topic="shipping.label.created", title="Order shipped", path="order-shipped",
        audience="={{ { customerId: $json.body.customerId, orderId: $json.body.orderId } }}",
        subject="=Your order {{ $json.body.orderId }} has shipped",
        message="=Your order is on its way with {{ $json.body.carrier }}. "
                "Tracking number: {{ $json.body.trackingNumber }}, "
                "follow it at $(PUBLIC_BASE_URL)/tracking/{{ $json.body.trackingNumber }}.",
    ),
    Notification(
        topic="payment.failed", title="Payment failed", path="payment-failed",
        audience="={{ { customerId: $json.body.customerId, orderId: $json.body.orderId } }}",
        subject="=Payment for order {{ $json.body.orderId }} failed",
        message="=We could not take the payment for order {{ $json.body.orderId }}: {{ $json.body.reason }}. "
                "The items were released; please order again with another payment method.",
    ),
    Notification(
        topic="group-commerce.campaign.successful", title="Campaign tipped", path="campaign-tipped",
        audience="={{ { customerIds: $json.body.participants, campaignId: $json.body.campaign.id } }}",
        subject="=The group deal for {{ $json.body.campaign.sku }} is on",
        message="={{ $json.body.campaign.actualParticipants }} people joined: the group price of "
                "{{ $json.body.campaign.groupPrice }} {{ $json.body.campaign.currency }} held on your card "
                "when you joined is now charged. Your order follows.",
    ),
    Notification(
        topic="group-commerce.campaign.expired", title="Campaign expired", path="campaign-expired",
        audience="={{ { customerIds: $json.body.participants, campaignId: $json.body.campaign.id } }}",
        subject="=The group deal for {{ $json.body.campaign.sku }} did not happen",
        message="=Only {{ $json.body.campaign.actualParticipants }} of the "
                "{{ $json.body.campaign.minParticipants }} people needed joined before the deadline. "
                "Nothing was charged: the hold on your card is released.",
    ),
)


def notifications() -> dict[str, Notification]:
    return {notification.topic: notification for notification in NOTIFICATIONS}


def notification_routes() -> dict[str, str]:
    """Notification topic -> n8n webhook path (`/webhook/order-confirmed/$(N8N_WEBHOOK_PATH_TOKEN)`)."""
    return {notification.topic: webhook_uri(notification) for notification in NOTIFICATIONS}


def webhook_path(notification: Notification) -> str:
    return f"{notification.path}/{filled(WEBHOOK_TOKEN)}"


def webhook_uri(notification: Notification) -> str:
    return f"/webhook/{webhook_path(notification)}"


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _webhook_node(notification: Notification) -> dict[str, Any]:
    return {
        "id": _id(notification.path, "webhook"),
        "name": "CloudEvent " + notification.topic,
        "type": "n8n-nodes-base.webhook",
        "typeVersion": 2,
        "position": [0, 0],
        "webhookId": _id(notification.path, "webhook-id"),
        "parameters": {
            "httpMethod": "POST",
            "path": webhook_path(notification),
            "responseMode": "onReceived",
            # Webhook v2 reads the code from its options (a top-level responseCode is v1's, ignored).
            "options": {"noResponseBody": True, "responseCode": {"values": {"responseCode": 204}}},
        },
    }


def _assignment(notification: Notification, name: str, value: str, kind: str) -> dict[str, Any]:
    return {"id": _id(notification.path, name), "name": name, "value": value, "type": kind}


def _compose_node(notification: Notification) -> dict[str, Any]:
    assignments = [
        _assignment(notification, "eventId", "={{ $json.headers['ce-id'] }}", "string"),
        _assignment(notification, "eventType", "={{ $json.headers['ce-type'] }}", "string"),
        _assignment(notification, "notification", notification.path, "string"),
        _assignment(notification, "audience", notification.audience, "object"),
        _assignment(notification, "subject", notification.subject, "string"),
        _assignment(notification, "message", notification.message, "string"),
    ]
    return {
        "id": _id(notification.path, "compose"),
        "name": "Compose message",
        "type": "n8n-nodes-base.set",
        "typeVersion": 3.4,
        "position": [260, 0],
        "parameters": {"mode": "manual", "assignments": {"assignments": assignments}, "options": {}},
    }


def _send_node(notification: Notification) -> dict[str, Any]:
    return {
        "id": _id(notification.path, "send"),
        "name": "Send notification",
        "type": "n8n-nodes-base.httpRequest",
        "typeVersion": 4.2,
        "position": [520, 0],
        "parameters": {
            "method": "POST",
            "url": filled(NOTIFICATIONS_URL),
            "sendHeaders": True,
            "headerParameters": {"parameters": [{"name": "Idempotency-Key", "value": "={{ $json.eventId }}"}]},
            "sendBody": True,
            "specifyBody": "json",
            "jsonBody": "={{ JSON.stringify($json) }}",
            "options": {"timeout": 10000},
        },
    }


def _link(target: str) -> dict[str, Any]:
    return {"main": [[{"node": target, "type": "main", "index": 0}]]}


def workflow(notification: Notification) -> dict[str, Any]:
    webhook, compose, send = _webhook_node(notification), _compose_node(notification), _send_node(notification)
    return {
        # A fixed id makes a second `n8n import:workflow` update the workflow instead of adding a copy.
        "id": hashlib.sha1(notification.path.encode()).hexdigest()[:16],
        "name": "FusionCommerce: " + notification.title,
        "active": True,
        "nodes": [webhook, compose, send],
        "connections": {webhook["name"]: _link(compose["name"]), compose["name"]: _link(send["name"])},
        "settings": {
            "executionOrder": "v1",
            "timezone": "Etc/UTC",
            "saveDataErrorExecution": "all",
            "saveDataSuccessExecution": "none",
        },
        "pinData": {},
        "tags": [],
    }


def workflows() -> list[dict[str, Any]]:
    """The array `n8n import:workflow --input=workflows.json` takes, one workflow per notification."""
    return [workflow(notification) for notification in NOTIFICATIONS]


def workflows_json() -> str:
    return json.dumps(workflows(), indent=2, ensure_ascii=False) + "\n"
