"""The n8n workflows shipped in deploy/n8n/workflows.json and the Triggers that feed them."""

from __future__ import annotations

import json
from typing import Any

from deploy_support import PROJECT_ROOT, find, of_kind

from fusion.knative.n8n import NOTIFICATION_DELIVERY, notifications, workflows
from fusion.knative.resources import Manifest
from fusion.topics import TOPICS

WORKFLOWS_FILE = PROJECT_ROOT / "deploy" / "n8n" / "workflows.json"
EXPECTED = {
    "order.confirmed": "Order confirmed",
    "shipping.label.created": "Order shipped",
    "payment.failed": "Payment failed",
    "group-commerce.campaign.successful": "Campaign tipped",
    "group-commerce.campaign.expired": "Campaign expired",
}


def _webhook(workflow: dict[str, Any]) -> dict[str, Any]:
    (node,) = [node for node in workflow["nodes"] if node["type"] == "n8n-nodes-base.webhook"]
    return node


def test_the_file_is_an_array_of_importable_workflows() -> None:
    shipped = json.loads(WORKFLOWS_FILE.read_text())
    assert isinstance(shipped, list) and shipped == workflows()
    for workflow in shipped:
        assert {"name", "nodes", "connections", "settings", "active"} <= set(workflow)
        assert workflow["active"] is True
        names = {node["name"] for node in workflow["nodes"]}
        assert len(names) == len(workflow["nodes"])
        for source, outputs in workflow["connections"].items():
            assert source in names
            assert all(link["node"] in names for branch in outputs["main"] for link in branch)
        for node in workflow["nodes"]:
            assert {"id", "name", "type", "typeVersion", "position", "parameters"} <= set(node)
    assert len({w["id"] for w in shipped}) == len(shipped), "fixed, distinct ids: re-import updates in place"


def test_one_workflow_per_notification_topic() -> None:
    assert {t.name for t in TOPICS.values() if t.notification} == set(EXPECTED)
    assert {topic: n.title for topic, n in notifications().items()} == EXPECTED
    assert sorted(w["name"] for w in workflows()) == sorted(f"FusionCommerce: {title}" for title in EXPECTED.values())


def test_webhooks_answer_with_an_empty_body() -> None:
    for workflow in workflows():
        parameters = _webhook(workflow)["parameters"]
        assert parameters["httpMethod"] == "POST"
        assert parameters["responseMode"] == "onReceived"
        assert parameters["options"]["noResponseBody"] is True


def test_the_shipped_message_carries_the_tracking_number() -> None:
    shipped = notifications()["shipping.label.created"]
    assert "trackingNumber" in shipped.message and "carrier" in shipped.message


def test_a_trigger_delivers_each_notification_to_its_webhook(documents: list[Manifest]) -> None:
    paths = {_webhook(w)["parameters"]["path"]: w for w in workflows()}
    n8n_triggers = [t for t in of_kind(documents, "Trigger") if t["spec"]["subscriber"]["ref"]["name"] == "n8n"]
    assert len(n8n_triggers) == len(EXPECTED)
    for trigger in n8n_triggers:
        subscriber = trigger["spec"]["subscriber"]
        assert subscriber["ref"] == {"apiVersion": "v1", "kind": "Service", "name": "n8n"}
        path = subscriber["uri"].removeprefix("/webhook/")
        assert path in paths
        topic_name = next(t for t, n in notifications().items() if n.path == path)
        assert trigger["spec"]["filter"]["attributes"] == {"type": TOPICS[topic_name].type}
        assert trigger["spec"]["delivery"]["retry"] == NOTIFICATION_DELIVERY.retries
        assert find(documents, "KafkaSink", trigger["spec"]["delivery"]["deadLetterSink"]["ref"]["name"])


def test_n8n_runs_the_pinned_image_on_postgres_with_credentials_from_a_secret(documents: list[Manifest]) -> None:
    deployment = find(documents, "Deployment", "n8n")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "n8nio/n8n:1.70.1"
    env = {e["name"]: e for e in container["env"]}
    assert env["DB_TYPE"]["value"] == "postgresdb"
    for name in ("N8N_BASIC_AUTH_USER", "N8N_BASIC_AUTH_PASSWORD", "N8N_ENCRYPTION_KEY", "DB_POSTGRESDB_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "n8n-credentials"
    service = find(documents, "Service", "n8n")
    assert service["spec"]["type"] == "ClusterIP"
    job = find(documents, "Job", "n8n-import-workflows")
    assert "import:workflow" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
