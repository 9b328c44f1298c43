"""n8n: the notification workflows, its Deployment and Service, and the Triggers that feed it.

One workflow per notification topic. Each starts with a Webhook node at `/webhook/<path>` that
answers 204 with no body (the Kafka Broker counts a 2xx with a body that is not a CloudEvent as
a failed delivery), composes the message from the CloudEvent (binary mode: payload in the body,
attributes in `ce-*` headers) and posts it to NOTIFICATIONS_URL, the delivery channel of the
environment (mail or chat gateway).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from fusion.knative.environments import Environment
from fusion.knative.eventing import trigger
from fusion.knative.resources import (
    N8N_SECRET,
    N8N_SECRET_KEYS,
    NOTIFIER,
    Manifest,
    config_env,
    dns_name,
    labels,
    metadata,
    ref,
    restricted,
    secret_env,
    value_env,
)
from fusion.registry import Delivery
from fusion.topics import TOPICS

N8N_IMAGE = "n8nio/n8n:1.70.1"
N8N_PORT = 5678
N8N_UID = 1000  # the `node` user of the n8n image
WORKFLOWS_CONFIG_MAP = "n8n-workflows"
WORKFLOWS_FILE_NAME = "workflows.json"
# Notifications are not ordered per key, and a slow mail gateway must not hold up the next one.
NOTIFICATION_DELIVERY = Delivery(retries=3, backoff="exponential", delay=1.0, timeout=10.0, ordered=False)
_NAMESPACE = uuid.UUID("6f1f6f0e-4d0b-4c1e-9a55-0f3c2a6b7d10")


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
                "follow it at {{ $env.PUBLIC_BASE_URL }}/tracking/{{ $json.body.trackingNumber }}.",
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
        message="={{ $json.body.campaign.actualParticipants }} people joined: you pay the group price of "
                "{{ $json.body.campaign.groupPrice }} {{ $json.body.campaign.currency }}. Your order follows.",
    ),
    Notification(
        topic="group-commerce.campaign.expired", title="Campaign expired", path="campaign-expired",
        audience="={{ { customerIds: $json.body.participants, campaignId: $json.body.campaign.id } }}",
        subject="=The group deal for {{ $json.body.campaign.sku }} did not happen",
        message="=Only {{ $json.body.campaign.actualParticipants }} of the "
                "{{ $json.body.campaign.minParticipants }} people needed joined before the deadline. "
                "Nothing was charged.",
    ),
)


def notifications() -> dict[str, Notification]:
    return {notification.topic: notification for notification in NOTIFICATIONS}


def notification_routes() -> dict[str, str]:
    """Notification topic -> n8n webhook path (e.g. `/webhook/order-confirmed`), for any router feeding n8n."""
    return {notification.topic: webhook_uri(notification) for notification in NOTIFICATIONS}


def webhook_uri(notification: Notification) -> str:
    return f"/webhook/{notification.path}"


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
            "path": notification.path,
            "responseMode": "onReceived",
            "responseCode": 204,
            "options": {"noResponseBody": True},
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
            "url": "={{ $env.NOTIFICATIONS_URL }}",
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


def _n8n_labels() -> dict[str, str]:
    return labels(NOTIFIER, "notifications")


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": NOTIFIER, "app.kubernetes.io/part-of": "fusioncommerce"}


def _n8n_env(env: Environment) -> list[dict[str, Any]]:
    return [
        value_env("DB_TYPE", "postgresdb"),
        value_env("DB_POSTGRESDB_PORT", "5432"),
        *(secret_env(key, N8N_SECRET) for key in N8N_SECRET_KEYS if key.startswith("DB_")),
        # n8n 1.x replaced basic auth by its owner account and ignores these two; they are kept
        # so the credentials live in one Secret, and the editor is reachable only in-cluster.
        value_env("N8N_BASIC_AUTH_ACTIVE", "true"),
        secret_env("N8N_BASIC_AUTH_USER", N8N_SECRET),
        secret_env("N8N_BASIC_AUTH_PASSWORD", N8N_SECRET),
        secret_env("N8N_ENCRYPTION_KEY", N8N_SECRET),
        value_env("N8N_PORT", str(N8N_PORT)),
        value_env("N8N_PROTOCOL", "http"),
        value_env("WEBHOOK_URL", f"http://{NOTIFIER}.{env.namespace}.svc.cluster.local/"),
        value_env("GENERIC_TIMEZONE", "Etc/UTC"),
        value_env("N8N_DIAGNOSTICS_ENABLED", "false"),
        value_env("N8N_PERSONALIZATION_ENABLED", "false"),
        value_env("N8N_BLOCK_ENV_ACCESS_IN_NODE", "false"),
        config_env("NOTIFICATIONS_URL"),
        config_env("PUBLIC_BASE_URL"),
    ]


def _n8n_probe(failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": "/healthz", "port": N8N_PORT}, "periodSeconds": 10, "timeoutSeconds": 3,
            "failureThreshold": failures}


def n8n_deployment(env: Environment) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(NOTIFIER, env.namespace, _n8n_labels()),
        "spec": {
            "replicas": 1,
            # n8n in its default (non-queue) mode must run as a single instance.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _selector()},
            "template": {
                "metadata": {"labels": _n8n_labels()},
                "spec": {
                    "enableServiceLinks": False,
                    "containers": [{
                        "name": NOTIFIER,
                        "image": N8N_IMAGE,
                        "ports": [{"name": "http", "containerPort": N8N_PORT}],
                        "env": _n8n_env(env),
                        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                      "limits": {"cpu": "1000m", "memory": "1Gi"}},
                        # The first start runs n8n's own database migrations.
                        "startupProbe": _n8n_probe(failures=30),
                        "readinessProbe": _n8n_probe(failures=3),
                        "livenessProbe": _n8n_probe(failures=6),
                        "volumeMounts": [{"name": "home", "mountPath": "/home/node/.n8n"}],
                        "securityContext": restricted(run_as_user=N8N_UID),
                    }],
                    "volumes": [{"name": "home", "emptyDir": {}}],
                },
            },
        },
    }


def n8n_service(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(NOTIFIER, env.namespace, _n8n_labels()),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def notification_trigger(notification: Notification, env: Environment) -> Manifest:
    name = dns_name(NOTIFIER, notification.path)
    subscriber = {"ref": ref("v1", "Service", NOTIFIER), "uri": webhook_uri(notification)}
    return trigger(name, env, {"type": TOPICS[notification.topic].type}, subscriber, NOTIFICATION_DELIVERY,
                   notification.topic, labels(name, "notifications"))


def notification_triggers(env: Environment) -> list[Manifest]:
    return [notification_trigger(notification, env) for notification in NOTIFICATIONS]


def workflows_config_map(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(WORKFLOWS_CONFIG_MAP, env.namespace, labels(WORKFLOWS_CONFIG_MAP, "notifications")),
        "data": {WORKFLOWS_FILE_NAME: workflows_json()},
    }


def import_workflows_job(env: Environment) -> Manifest:
    """Import (or update) the workflows into n8n's database and activate them; restart n8n afterwards."""
    job_labels = labels("n8n-import-workflows", "job")
    script = (
        f"n8n import:workflow --input=/workflows/{WORKFLOWS_FILE_NAME} && "
        + " && ".join(f"n8n update:workflow --id={item['id']} --active=true" for item in workflows())
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("n8n-import-workflows", env.namespace, job_labels),
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 600,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "containers": [{
                        "name": "import",
                        "image": N8N_IMAGE,
                        "command": ["/bin/sh", "-c", script],
                        "env": [e for e in _n8n_env(env) if e["name"].startswith(("DB_", "N8N_ENCRYPTION"))],
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"cpu": "500m", "memory": "512Mi"}},
                        "volumeMounts": [{"name": "workflows", "mountPath": "/workflows", "readOnly": True},
                                         {"name": "home", "mountPath": "/home/node/.n8n"}],
                        "securityContext": restricted(run_as_user=N8N_UID),
                    }],
                    "volumes": [{"name": "workflows", "configMap": {"name": WORKFLOWS_CONFIG_MAP}},
                                {"name": "home", "emptyDir": {}}],
                },
            },
        },
    }
