"""The n8n workflows shipped in deploy/n8n/workflows.json and the Triggers that feed them."""

from __future__ import annotations

import json
import re
from typing import Any

from deploy_support import PROJECT_ROOT, find, of_kind

from fusion.knative.n8n import N8N_VERSION, NOTIFICATION_DELIVERY, notifications, workflows
from fusion.knative.n8n_workflows import FILLED_AT_IMPORT
from fusion.knative.resources import Manifest
from fusion.topics import TOPICS

WORKFLOWS_FILE = PROJECT_ROOT / "deploy" / "n8n" / "workflows.json"
IMPORT_SCRIPT = PROJECT_ROOT / "deploy" / "n8n" / "import.sh"
RUNTIME = PROJECT_ROOT / "deploy" / "n8n" / "runtime" / "package.json"
TOKEN = "$(N8N_WEBHOOK_PATH_TOKEN)"
EXPECTED = {
    "order.confirmed": "Order confirmed",
    "shipping.label.created": "Order shipped",
    "payment.failed": "Payment failed",
    "group-commerce.campaign.successful": "Campaign tipped",
    "group-commerce.campaign.expired": "Campaign expired",
}


def _webhook(workflow: dict[str, Any]) -> dict[str, Any]:
    (node,) = [node for node in workflow["nodes"] if node["type"] == "n8n-nodes-base.webhook"]
    found: dict[str, Any] = node
    return found


def _container(documents: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    (container,) = find(documents, kind, name)["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


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


def test_webhooks_answer_204_with_an_empty_body() -> None:
    for workflow in workflows():
        parameters = _webhook(workflow)["parameters"]
        assert parameters["httpMethod"] == "POST"
        assert parameters["responseMode"] == "onReceived"
        assert parameters["options"] == {"noResponseBody": True, "responseCode": {"values": {"responseCode": 204}}}


def test_webhook_paths_end_with_the_token_and_no_other_authentication_is_expected() -> None:
    for workflow in workflows():
        parameters = _webhook(workflow)["parameters"]
        assert parameters["path"].endswith("/" + TOKEN)
        assert parameters.get("authentication", "none") == "none", "a Trigger cannot send a credential header"


def test_the_shipped_message_carries_the_tracking_url() -> None:
    shipped = notifications()["shipping.label.created"]
    assert "carrier" in shipped.message
    assert "$(PUBLIC_BASE_URL)/tracking/{{ $json.body.trackingNumber }}" in shipped.message


def test_nodes_read_nothing_from_the_environment_and_every_placeholder_is_filled_at_import() -> None:
    text = WORKFLOWS_FILE.read_text()
    assert "$env" not in text, "n8n runs with N8N_BLOCK_ENV_ACCESS_IN_NODE=true"
    assert set(re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", text)) == set(FILLED_AT_IMPORT)


def test_a_trigger_delivers_each_notification_to_its_webhook(documents: list[Manifest]) -> None:
    paths = {_webhook(w)["parameters"]["path"]: w for w in workflows()}
    n8n_triggers = [t for t in of_kind(documents, "Trigger") if t["spec"]["subscriber"]["ref"]["name"] == "n8n"]
    assert len(n8n_triggers) == len(EXPECTED)
    for trigger in n8n_triggers:
        subscriber = trigger["spec"]["subscriber"]
        assert subscriber["ref"] == {"apiVersion": "v1", "kind": "Service", "name": "n8n"}
        path = subscriber["uri"].removeprefix("/webhook/")
        assert path in paths and path.endswith("/" + TOKEN), "the deploy fills in the token (docs/operations.md)"
        topic_name = next(t for t, n in notifications().items() if path.startswith(n.path + "/"))
        assert trigger["spec"]["filter"]["attributes"] == {"type": TOPICS[topic_name].type}
        assert trigger["spec"]["delivery"]["retry"] == NOTIFICATION_DELIVERY.retries
        assert find(documents, "KafkaSink", trigger["spec"]["delivery"]["deadLetterSink"]["ref"]["name"])


def test_n8n_runs_the_pinned_image_on_postgres_with_credentials_from_a_secret(documents: list[Manifest]) -> None:
    container = _container(documents, "Deployment", "n8n")
    assert container["image"] == "n8nio/n8n:1.123.81"
    env = {e["name"]: e for e in container["env"]}
    assert env["DB_TYPE"]["value"] == "postgresdb"
    for name in ("N8N_BASIC_AUTH_USER", "N8N_BASIC_AUTH_PASSWORD", "N8N_ENCRYPTION_KEY", "DB_POSTGRESDB_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "n8n-credentials"
    assert env["N8N_BLOCK_ENV_ACCESS_IN_NODE"]["value"] == "true"
    service = find(documents, "Service", "n8n")
    assert service["spec"]["type"] == "ClusterIP"


def test_the_import_job_runs_import_sh_with_the_values_it_fills_in(documents: list[Manifest]) -> None:
    container = _container(documents, "Job", "n8n-import-workflows")
    assert container["image"] == _container(documents, "Deployment", "n8n")["image"]
    assert container["command"] == ["/bin/sh", "/workflows/import.sh"]
    config_map = find(documents, "ConfigMap", "n8n-workflows")
    assert config_map["data"] == {"workflows.json": WORKFLOWS_FILE.read_text(), "import.sh": IMPORT_SCRIPT.read_text()}
    env = {e["name"]: e for e in container["env"]}
    assert env["N8N_BLOCK_ENV_ACCESS_IN_NODE"]["value"] == "true"
    assert env["N8N_WEBHOOK_PATH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "n8n-credentials",
                                                                         "key": "N8N_WEBHOOK_PATH_TOKEN"}
    for name in ("NOTIFICATIONS_URL", "PUBLIC_BASE_URL"):
        assert env[name]["valueFrom"]["configMapKeyRef"] == {"name": "fusion-config", "key": name}
    assert set(FILLED_AT_IMPORT) <= set(env)


def test_the_secret_template_has_the_webhook_token(documents: list[Manifest]) -> None:
    assert find(documents, "Secret", "n8n-credentials")["stringData"]["N8N_WEBHOOK_PATH_TOKEN"] == ""


def test_the_test_runtime_pins_the_version_the_manifests_run() -> None:
    runtime = json.loads(RUNTIME.read_text())
    assert runtime["dependencies"] == {"n8n": N8N_VERSION} and N8N_VERSION == "1.123.81"
    # n8n-nodes-base asks for xlsx from a CDN outside the registry; an exact registry version replaces it.
    assert re.fullmatch(r"\d+\.\d+\.\d+", runtime["overrides"]["xlsx"])
