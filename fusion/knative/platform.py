"""The plain Kubernetes parts: namespace, settings, secret templates, the pre-deploy Jobs, the relay."""

from __future__ import annotations

import shlex
from typing import Any

from fusion.knative.environments import PLATFORM_IMAGE, Environment
from fusion.knative.resources import (
    CONFIG_MAP,
    DATABASE_SECRET,
    METRICS_PORT,
    MIGRATIONS_DB_KEY,
    N8N_SECRET,
    N8N_SECRET_KEYS,
    OIDC_AUDIENCE,
    OIDC_SCOPE_CLAIM,
    RELAY,
    RELAY_DB_KEY,
    SHIPPING_KEYS,
    SHIPPING_SECRET,
    STOREFRONT_OIDC_CLIENT_ID,
    STRIPE_BROWSER_KEYS,
    STRIPE_KEYS,
    STRIPE_SECRET,
    Manifest,
    config_env,
    labels,
    metadata,
    oidc_env,
    restricted,
    scrape_annotations,
    secret_env,
    value_env,
)
from fusion.knative.security import KAFKA_SECRET, KAFKA_SECRET_KEYS, kafka_ca_volume, kafka_client_env
from fusion.knative.serving import THREADS, catalog_address
from fusion.registry import services
from fusion.topics import TOPICS

REDPANDA_IMAGE = "docker.redpanda.com/redpandadata/redpanda:v24.2.18"
REDPANDA_UID = 101
DAY_MS = 24 * 3600 * 1000
DLQ_RETENTION_DAYS = 30
DB_POOL_SIZE = 4  # per pod; SQLAlchemy may overflow to twice that, one connection per gunicorn thread
NOTIFICATIONS_URL = "http://notifications.invalid/fusioncommerce"  # where n8n posts messages: set per cluster
# The Prometheus the operations service reads the status from (the Prometheus Operator's Service): set per cluster.
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc.cluster.local:9090"


def namespace(env: Environment) -> Manifest:
    ns_labels = labels(env.namespace, "namespace")
    # Warn (not enforce) on the restricted profile: the Knative sidecars are outside our control.
    ns_labels["pod-security.kubernetes.io/warn"] = "restricted"
    ns_labels["pod-security.kubernetes.io/audit"] = "restricted"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.namespace, "labels": ns_labels}}


def settings_config_map(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(CONFIG_MAP, env.namespace, labels(CONFIG_MAP, "config")),
        "data": {
            "FUSION_ENV": env.fusion_env,
            "LOG_LEVEL": env.log_level,
            "KAFKA_BROKERS": env.kafka_brokers,
            "PUBLIC_BASE_URL": env.public_base_url,
            "DB_POOL_SIZE": str(DB_POOL_SIZE),
            "THREADS": str(THREADS),
            "NOTIFICATIONS_URL": NOTIFICATIONS_URL,
            "OIDC_ISSUER": env.oidc_issuer,
            "OIDC_AUDIENCE": OIDC_AUDIENCE,
            "OIDC_SCOPE_CLAIM": OIDC_SCOPE_CLAIM,
            "STOREFRONT_OIDC_CLIENT_ID": STOREFRONT_OIDC_CLIENT_ID,
            "EVENTING_OIDC_ISSUER": env.eventing_oidc_issuer,
            "CATALOG_URL": catalog_address(env),
            "OPERATIONS_PROMETHEUS_URL": PROMETHEUS_URL,
            # One Prometheus scrapes every environment: the operations status reads only this one's series.
            "OPERATIONS_PROMETHEUS_SELECTOR": f'namespace="{env.namespace}"',
        },
    }


def database_secret_keys() -> list[str]:
    return [*services(), MIGRATIONS_DB_KEY, RELAY_DB_KEY]


def _secret_template(name: str, keys: list[str] | tuple[str, ...], env: Environment, purpose: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, env.namespace, labels(name, "secret"), {"fusioncommerce.dev/purpose": purpose}),
        "type": "Opaque",
        "stringData": dict.fromkeys(keys, ""),
    }


def secret_templates(env: Environment) -> list[Manifest]:
    """Templates only: every value is empty. Fill them in outside the repository (see docs/operations.md)."""
    return [
        _secret_template(DATABASE_SECRET, database_secret_keys(), env,
                         "PostgreSQL URL per service, for migrations and for the outbox relay"),
        _secret_template(STRIPE_SECRET, (*STRIPE_KEYS, *STRIPE_BROWSER_KEYS), env,
                         "Stripe API key, webhook signing secret and the pages' publishable key"),
        _secret_template(SHIPPING_SECRET, SHIPPING_KEYS, env, "shared secret carriers send with status updates"),
        _secret_template(N8N_SECRET, N8N_SECRET_KEYS, env, "n8n login, encryption key, database, webhook path token"),
        *([_secret_template(KAFKA_SECRET, KAFKA_SECRET_KEYS, env,
                            "Kafka TLS and SASL/SCRAM: protocol SASL_SSL, sasl.mechanism, user, password, ca.crt")]
          if env.kafka_tls else []),
    ]


def platform_image(env: Environment) -> str:
    return env.image(PLATFORM_IMAGE)


def _platform_env(db_key: str) -> list[dict[str, Any]]:
    return [
        config_env("FUSION_ENV"),
        config_env("LOG_LEVEL"),
        config_env("KAFKA_BROKERS"),
        *oidc_env(),
        secret_env("DATABASE_URL", DATABASE_SECRET, db_key),
    ]


def _small_resources() -> dict[str, Any]:
    return {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def _job(name: str, env: Environment, container: dict[str, Any], deadline: int) -> Manifest:
    job_labels = labels(name, "job")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(name, env.namespace, job_labels),
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "containers": [container],
                },
            },
        },
    }


def migrate_job(env: Environment) -> Manifest:
    """`fusion migrate up` (alembic upgrade of every service branch), before new Revisions take traffic."""
    container = {
        "name": "migrate",
        "image": platform_image(env),
        "command": ["fusion", "migrate", "up"],
        "env": _platform_env(MIGRATIONS_DB_KEY),
        "resources": _small_resources(),
        "securityContext": restricted(),
    }
    return _job("migrate", env, container, deadline=600)


def _create_topic_line(name: str, partitions: int, replicas: int, retention_days: int) -> str:
    retention = f"retention.ms={retention_days * DAY_MS}"
    return f"create {shlex.quote(name)} {partitions} {replicas} {retention}"


def topics_script(env: Environment) -> str:
    """Create every topic (events and dead letters) with the catalogue's partitions and retention."""
    # rpk reads the credentials from the environment (the Kafka Secret), never from the script.
    auth = (' -X tls.enabled=true -X tls.ca="$KAFKA_SSL_CA_LOCATION" -X sasl.mechanism="$KAFKA_SASL_MECHANISM"'
            ' -X user="$KAFKA_SASL_USERNAME" -X pass="$KAFKA_SASL_PASSWORD"') if env.kafka_tls else ""
    lines = [
        "set -eu",
        "create() {",
        f'  rpk topic create "$1" -X brokers="$KAFKA_BROKERS"{auth} -p "$2" -r "$3" -c "$4" \\',
        f'    || rpk topic describe "$1" -X brokers="$KAFKA_BROKERS"{auth} > /dev/null',
        "}",
    ]
    for topic_ in sorted(TOPICS.values(), key=lambda t: t.name):
        partitions = env.partitions(topic_)
        lines.append(_create_topic_line(topic_.name, partitions, env.replication, topic_.retention_days))
        lines.append(_create_topic_line(topic_.dlq, 1, env.replication, DLQ_RETENTION_DAYS))
    return "\n".join(lines) + "\n"


def topics_job(env: Environment) -> Manifest:
    container = {
        "name": "create-topics",
        "image": REDPANDA_IMAGE,
        "command": ["/bin/bash", "-c", topics_script(env)],
        "env": [config_env("KAFKA_BROKERS"), *(kafka_client_env() if env.kafka_tls else [])],
        "resources": _small_resources(),
        "securityContext": restricted(run_as_user=REDPANDA_UID),
    }
    return _with_kafka_ca(_job("create-topics", env, container, deadline=300), env)


def _with_kafka_ca(workload: Manifest, env: Environment) -> Manifest:
    """Mount the Kafka CA into every container of a Job or Deployment, where Kafka speaks TLS."""
    if not env.kafka_tls:
        return workload
    volume, mount = kafka_ca_volume()
    pod = workload["spec"]["template"]["spec"]
    pod["volumes"] = [*pod.get("volumes", []), volume]
    for container in pod["containers"]:
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
    return workload


def _relay_metrics_env(env: Environment) -> list[dict[str, Any]]:
    """/metrics on the pod's network, with the lag of the Triggers of the relay's own namespace."""
    return [value_env("FUSION_METRICS_ADDRESS", f"0.0.0.0:{METRICS_PORT}"),
            value_env("FUSION_TRIGGER_NAMESPACE", env.namespace)]


def relay_deployment(env: Environment) -> Manifest:
    """`fusion relay`: publishes every service's outbox to Redpanda right after commit."""
    return _with_kafka_ca(_relay_deployment(env), env)


def _relay_deployment(env: Environment) -> Manifest:
    relay_labels = labels(RELAY, "relay")
    selector = {"app.kubernetes.io/name": RELAY, "app.kubernetes.io/part-of": relay_labels["app.kubernetes.io/part-of"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(RELAY, env.namespace, relay_labels),
        "spec": {
            "replicas": 1,
            # One relay at a time keeps each partition key's events in commit order.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": relay_labels, "annotations": scrape_annotations(METRICS_PORT)},
                "spec": {
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": RELAY,
                        "image": platform_image(env),
                        "command": ["fusion", "relay"],
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "env": [*_platform_env(RELAY_DB_KEY), *_relay_metrics_env(env),
                                *(kafka_client_env() if env.kafka_tls else [])],
                        "resources": _small_resources(),
                        "securityContext": restricted(),
                    }],
                },
            },
        },
    }
