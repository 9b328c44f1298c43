"""n8n on Kubernetes: its Deployment and Service, the Triggers that feed it, and the Job importing
its workflows (those are in `n8n_workflows`) with deploy/n8n/import.sh."""

from __future__ import annotations

from typing import Any

from fusion.knative.environments import PROJECT_ROOT, Environment
from fusion.knative.eventing import trigger
from fusion.knative.n8n_workflows import (
    FILLED_AT_IMPORT,
    NOTIFICATIONS,
    Notification,
    notifications,
    webhook_uri,
    workflows,
    workflows_json,
)
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

# The workflow builders are re-exported: what renders n8n's manifests renders its workflows file too.
__all__ = [
    "N8N_IMAGE",
    "N8N_VERSION",
    "NOTIFICATION_DELIVERY",
    "WORKFLOWS_CONFIG_MAP",
    "WORKFLOWS_FILE_NAME",
    "import_workflows_job",
    "n8n_deployment",
    "n8n_service",
    "notification_trigger",
    "notification_triggers",
    "notifications",
    "workflows",
    "workflows_config_map",
    "workflows_json",
]

# Keep equal to deploy/n8n/runtime/package.json, the n8n tests/deploy/test_n8n_import.py imports into.
N8N_VERSION = "1.123.81"
N8N_IMAGE = f"n8nio/n8n:{N8N_VERSION}"
N8N_PORT = 5678
N8N_UID = 1000  # the `node` user of the n8n image
WORKFLOWS_CONFIG_MAP = "n8n-workflows"
WORKFLOWS_FILE_NAME = "workflows.json"
IMPORT_SCRIPT = PROJECT_ROOT / "deploy" / "n8n" / "import.sh"
# Notifications are not ordered per key, and a slow mail gateway must not hold up the next one.
NOTIFICATION_DELIVERY = Delivery(retries=3, backoff="exponential", delay=1.0, timeout=10.0, ordered=False)


def _n8n_labels() -> dict[str, str]:
    return labels(NOTIFIER, "notifications")


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": NOTIFIER, "app.kubernetes.io/part-of": "fusioncommerce"}


def _common_env() -> list[dict[str, Any]]:
    """What both the server and the importer need: the database, its encryption key, no `$env` in nodes."""
    return [
        value_env("DB_TYPE", "postgresdb"),
        value_env("DB_POSTGRESDB_PORT", "5432"),
        *(secret_env(key, N8N_SECRET) for key in N8N_SECRET_KEYS if key.startswith("DB_")),
        secret_env("N8N_ENCRYPTION_KEY", N8N_SECRET),
        value_env("N8N_BLOCK_ENV_ACCESS_IN_NODE", "true"),
    ]


def _n8n_env(env: Environment) -> list[dict[str, Any]]:
    return [
        *_common_env(),
        # n8n 1.x replaced basic auth by its owner account and ignores these two; they are kept
        # so the credentials live in one Secret, and the editor is reachable only in-cluster.
        value_env("N8N_BASIC_AUTH_ACTIVE", "true"),
        secret_env("N8N_BASIC_AUTH_USER", N8N_SECRET),
        secret_env("N8N_BASIC_AUTH_PASSWORD", N8N_SECRET),
        value_env("N8N_PORT", str(N8N_PORT)),
        value_env("N8N_PROTOCOL", "http"),
        value_env("WEBHOOK_URL", f"http://{NOTIFIER}.{env.namespace}.svc.cluster.local/"),
        value_env("GENERIC_TIMEZONE", "Etc/UTC"),
        value_env("N8N_DIAGNOSTICS_ENABLED", "false"),
        value_env("N8N_PERSONALIZATION_ENABLED", "false"),
    ]


def _import_env() -> list[dict[str, Any]]:
    """The importer also reads what it fills into the workflows: the token from the Secret, the rest from settings."""
    filled = [secret_env(name, N8N_SECRET) if name in N8N_SECRET_KEYS else config_env(name)
              for name in FILLED_AT_IMPORT]
    return [*_common_env(), *filled]


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
        "data": {WORKFLOWS_FILE_NAME: workflows_json(), IMPORT_SCRIPT.name: IMPORT_SCRIPT.read_text(encoding="utf-8")},
    }


def import_workflows_job(env: Environment) -> Manifest:
    """Import (or update) the workflows into n8n's database and activate them; restart n8n afterwards."""
    job_labels = labels("n8n-import-workflows", "job")
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
                        "command": ["/bin/sh", f"/workflows/{IMPORT_SCRIPT.name}"],
                        "env": _import_env(),
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
